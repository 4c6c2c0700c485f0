"""Names the command line offers before anything heavy is imported (one definition, shared by
the parser and the code that acts on them)."""

SAMPLERS = ("tpe", "nsga2", "gp", "random")  # Optuna samplers by short name (searcher.make_sampler)
