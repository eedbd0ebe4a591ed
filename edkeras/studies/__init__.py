"""What the phase notebooks share: config recipes, references, held-out analyses, verdicts."""
