"""Pure translations between the canonical (OpenAI chat-completions) format and other providers' wire formats."""
