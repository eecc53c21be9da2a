// Placeholder until the input module lands.
