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


@pytest.mark.parametrize("kw,pattern", [
    ({"recipe": "fast"}, "unknown recipe 'fast'"),
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
