"""Floor search: many runs, one question. Explore (plan, draw, loop), shrink, soak, reproduce,
mutants. Imports play and everything below it."""
