"""What a user can chat with: provider kinds (code), presets (data) and connections (rows)."""
