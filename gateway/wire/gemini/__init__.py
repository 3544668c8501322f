"""Google Gemini / Vertex AI: the translation to and from generateContent, and the upstream adapter."""
