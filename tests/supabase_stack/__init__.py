"""A Supabase stand-in for tests: PostgreSQL, PostgREST, the Supabase CLI and an auth gateway."""
