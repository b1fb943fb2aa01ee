"""Where a user's data lives: the embedded SQLite file, or Supabase tables under row-level
security, with secrets encrypted in front of either (keybox)."""
