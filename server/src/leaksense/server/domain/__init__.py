"""Pure domain logic of the server: indicator formulas and volume arithmetic, no I/O."""
