"""Names the command line offers before anything heavy is imported (one definition, shared by
the parser and the code that acts on them)."""

SAMPLERS = ("tpe", "nsga2", "gp", "random")  # Optuna samplers by short name (searcher.make_sampler)
# --papers: the papers' settings the space holds tried right after dense (first), or not (off)
PAPERS_MODES = ("first", "off")
# Dense trained with the schedule compressed to these fractions of the epochs, on the dense seeds:
# the baseline every speedup must beat (reports/shorter.py).
TRAIN_SHORTER_FRACTIONS = (1 / 3, 1 / 2, 2 / 3)
# The pick, its rivals and dense trained this many times longer on one seed, when that costs at most
# this share of the training time the trials took (search/runner.py _fidelity_check).
FIDELITY_FACTOR = 2.0
FIDELITY_MAX_SHARE = 0.5
# --epochs auto (search/epochs_auto.py): dense trained first at EPOCHS_AUTO_START, twice that, ...
# epochs, up to --max-epochs (default: the proxy recipe's longest run, core/recipes.py).
EPOCHS_AUTO = "auto"
EPOCHS_AUTO_START = 3
EPOCHS_AUTO_MAX = 30
