"""Named recipes: the proxy for short runs, DeiT's for long ones, and one default for train and search."""

import pytest

from trilevel.core import RunConfig, UserError
from trilevel.core.config import DEFAULT_EPOCHS
from trilevel.core.recipes import PROXY_MAX_EPOCHS, RECIPES


def test_auto_recipe_is_chosen_by_run_length_only():
    short = RunConfig().resolved()
    assert short.recipe == "proxy" and short.epochs == DEFAULT_EPOCHS
    assert RunConfig(epochs=PROXY_MAX_EPOCHS).resolved().recipe == "proxy"
    long = RunConfig(epochs=300).resolved()
    assert long.recipe == "deit"
    # DeiT: lr 5e-4 x batch / 512, label smoothing and drop path 0.1, augmentation on
    assert long.lr == pytest.approx(5e-4 * long.batch_size / 512)
    assert (long.label_smoothing, long.drop_path, long.augment) == (0.1, 0.1, True)
    assert RunConfig(epochs=300, batch_size=1024).resolved().lr == pytest.approx(1e-3)
    # the dataset's name plays no part
    assert RunConfig(dataset="cifar10", data="/x").resolved().recipe == "proxy"


def test_set_values_override_the_recipe_and_unset_ones_follow_it():
    p = RECIPES["proxy"]
    c = RunConfig(lr=3e-3, augment=True, clip_grad=0.0).resolved()
    assert (c.lr, c.augment, c.clip_grad, c.warmup) == (3e-3, True, 0.0, p.warmup)
    # a larger batch scales the recipe's lr (sqrt for the AdamW proxy, as timm does)
    assert RunConfig(batch_size=4 * p.batch_size).resolved().lr == pytest.approx(2 * p.lr)
    assert RunConfig(recipe="deit").resolved().recipe == "deit"
    resolved = RunConfig().resolved()
    assert resolved.resolved() is resolved  # idempotent
    assert not resolved.recipe_fields_unset


def test_unset_values_stay_unset_in_exports_so_a_long_run_gets_deit():
    """best.yaml carries the base config as given: trained with --epochs 300 it resolves to DeiT."""
    exported = RunConfig.from_yaml(RunConfig().to_yaml())
    assert exported.lr is None and exported.replace(epochs=300).resolved().recipe == "deit"


def test_deit_and_finetune_recipes_resolve_to_their_documented_values():
    deit = RunConfig(recipe="deit", epochs=300).resolved()
    assert (deit.mixup, deit.cutmix, deit.aa, deit.reprob, deit.aug_repeats) == (0.8, 1.0, "rand-m9-mstd0.5-inc1", 0.25, 3)
    assert (deit.scale, deit.weight_decay, deit.layer_decay, deit.model_ema) == (0.08, 0.05, 0.0, 0.0)
    assert deit.warmup == pytest.approx(5 / 300) and deit.lr == pytest.approx(5e-4 * 256 / 512)
    fine = RunConfig(recipe="finetune", epochs=100).resolved()
    assert fine.layer_decay == 0.75 and fine.lr == pytest.approx(deit.lr / 10) and fine.aug_repeats == 0
    assert (fine.mixup, fine.cutmix, fine.reprob) == (0.8, 1.0, 0.25)
    # auto: a long run from weights fine-tunes, a short one is still the proxy
    assert RunConfig(epochs=300, pretrained=True).resolved().recipe == "finetune"
    assert RunConfig(epochs=300, initial_checkpoint="/w.pt").resolved().recipe == "finetune"
    assert RunConfig(epochs=9, pretrained=True).resolved().recipe == "proxy"
    proxy = RunConfig().resolved()
    assert (proxy.mixup, proxy.cutmix, proxy.aa, proxy.reprob, proxy.aug_repeats) == (0.0, 0.0, "none", 0.0, 0)
    # any field from YAML or a flag overrides the recipe's
    assert RunConfig.from_yaml("recipe: deit\nmixup: 0.2\naa: none\n").resolved().mixup == 0.2


@pytest.mark.parametrize("kw,pattern", [
    ({"recipe": "fast"}, "unknown recipe 'fast'"),
    ({"mixup": -1}, "mixup must be a non-negative"),
    ({"aug_repeats": 1.5}, "aug_repeats must be an integer"),
    ({"layer_decay": 2}, "layer_decay must be at most 1"),
    ({"scale": 0}, "scale must be > 0"),
    ({"reprob": 2}, "reprob"),
    ({"aa": 3}, "aa must be a timm auto-augment policy"),
    ({"pretrained": True, "initial_checkpoint": "/w.pt"}, "start from one of them"),
    ({"amp_dtype": "fp8"}, "amp_dtype must be one of bfloat16, float16, float32"),
    ({"lr": 0}, "lr must be a positive"),
    ({"clip_grad": -1}, "clip_grad must be a non-negative"),
    ({"label_smoothing": 1.5}, "label_smoothing"),
    ({"augment": "yes"}, "augment must be true or false"),
])
def test_bad_recipe_values(kw, pattern):
    with pytest.raises(UserError, match=pattern):
        RunConfig(**kw)


def test_a_default_search_trial_trains_exactly_what_trilevel_train_trains():
    from trilevel.core.cli import build_parser as train_parser
    from trilevel.core.cli import resolve_config
    from trilevel.search.cli import build_parser as search_parser
    from trilevel.search.cli import options_from_args
    from trilevel.search.trainable import build_trial_config
    from trilevel.spaces import load_space

    for flags in ([], ["--model", "vit_t", "--batch-size", "64", "--epochs", "5", "--seed", "3"]):
        args = search_parser().parse_args(flags)
        opts = options_from_args(args, flags)
        space = load_space(opts.space)
        trial = build_trial_config(opts.run.to_dict(), dict(space.fixed), space.dense_point())
        train = resolve_config(train_parser().parse_args(flags))
        assert trial.resolved().to_dict() == train.resolved().to_dict()


def test_longer_and_shorter_runs_of_a_search_keep_the_trials_recipe():
    """`auto` picks the recipe by length: the fidelity check's 2x runs of a 20-epoch search (40 epochs)
    and the train-shorter runs of a 40-epoch one (13 epochs) must still train the trials' recipe."""
    from trilevel.search.trainable import build_trial_config

    for epochs, other in ((20, 40), (40, 13)):
        base = RunConfig(epochs=epochs).to_dict()
        trial = build_trial_config(base, {}, {}).resolved()
        changed = build_trial_config(base, {}, {}, epochs=other)
        assert changed.epochs == other and changed.recipe == trial.recipe
        assert changed.to_dict() == trial.replace(epochs=other).to_dict()
    assert RunConfig(epochs=40).resolved().recipe != RunConfig(epochs=20).resolved().recipe  # else moot
