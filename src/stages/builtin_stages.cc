// Placeholder until the stages module lands.
