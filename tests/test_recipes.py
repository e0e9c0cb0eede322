import dataclasses

import pytest

from zeroshot_unlearn import RecipeError, list_recipes, load_recipe
from zeroshot_unlearn.recipes import parse_override, resolve_recipe, resolve_recipe_name


@pytest.mark.parametrize("architecture, expected", [
    ("digits_cnn", "digits"), ("cifar10_resnet20", "cifar_resnet"), ("cifar10_resnet56", "cifar_resnet"),
    ("resnet18", "timm_resnet"), ("resnet10t", "timm_resnet"), ("mobilenetv3_small_100", "mobilenetv3"),
    ("tf_mobilenetv3_large_100", "mobilenetv3"), ("efficientnet_b0", "efficientnet"),
    ("tf_efficientnet_b3", "efficientnet"), ("convnext_atto", "convnext"), ("vit_tiny_patch16_224", "vit"),
    ("deit_small_patch16_224", "vit"), ("some_new_net", "default"),
])
def test_auto_resolution(architecture, expected):
    assert resolve_recipe_name(architecture) == expected
    assert resolve_recipe("auto", architecture).name == expected


def test_every_shipped_recipe_loads():
    recipes = list_recipes()
    assert {"digits", "cifar_resnet", "timm_resnet", "default"} <= set(recipes)
    for name in recipes:
        assert load_recipe(name).name == name


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(RecipeError, match=r"unknown recipe key 'impair.lerning_rate'|unknown recipe key 'impair.lr_"):
        load_recipe("digits", {"impair": {"lr_": 0.1}})
    with pytest.raises(RecipeError, match="'generator.stpes'.*Did you mean 'steps'"):
        load_recipe("digits", {"generator.stpes": 3})


def test_wrong_type_and_range_are_refused():
    with pytest.raises(RecipeError, match="must be a number"):
        load_recipe("digits", {"impair.lr": "fast"})
    with pytest.raises(RecipeError, match="out of range"):
        load_recipe("digits", {"impair.lr": -1})
    with pytest.raises(RecipeError, match="choose one of"):
        load_recipe("digits", {"bn_policy": "sometimes"})
    with pytest.raises(RecipeError, match="Registered recipes"):
        load_recipe("no_such_recipe")


def test_overrides_make_a_new_recipe_and_roundtrip(tmp_path):
    base = load_recipe("digits")
    changed = base.replace({"impair.lr": 0.5, "generator": {"steps": 3}})
    assert changed.impair.lr == 0.5 and changed.generator.steps == 3
    assert base.impair.lr != 0.5  # recipes are immutable
    path = tmp_path / "mine.yaml"
    path.write_text(changed.to_yaml())
    assert load_recipe(path) == changed
    assert parse_override("impair.lr=0.02") == ("impair.lr", 0.02)
    # YAML 1.1 reads 3e-4 as a string; a float key takes it as the number it means
    assert load_recipe("default", dict([parse_override("bad_teacher.lr=3e-4")])).bad_teacher.lr == 3e-4


def test_every_trainable_family_has_its_own_recipe():
    from zeroshot_unlearn.harness.specs import get_train_spec, list_train_specs

    for name in list_train_specs():
        assert resolve_recipe_name(get_train_spec(name).architecture) != "default", name


def test_amortised_section_is_validated_like_the_recipe():
    with pytest.raises(RecipeError, match="amortised section.*epochz"):
        resolve_recipe({"amortised": {"impair.epochz": 1.0}}, "x")
    with pytest.raises(RecipeError, match="lr"):
        resolve_recipe({"amortised": {"impair.lr": -1.0}}, "x")
    assert load_recipe("cifar_resnet").amortised["impair.epochs"] < load_recipe("cifar_resnet").impair.epochs


def test_the_default_recipe_is_the_built_in_defaults():
    from zeroshot_unlearn.recipes import IDENTITY_KEYS, Recipe, recipe_from_dict

    def settings(recipe):
        return {k: v for k, v in recipe.to_dict().items() if k not in IDENTITY_KEYS}

    # One source of defaults: the file adds only its name, description and patterns.
    assert settings(load_recipe("default")) == settings(Recipe()) == settings(recipe_from_dict({}))
    # A partial phase keeps that phase's defaults, not another's (the impair phase synthesises).
    partial = recipe_from_dict({"impair": {"lr": 0.05}})
    assert partial.impair.lr == 0.05 and partial.impair.anti_memory_batch == Recipe().impair.anti_memory_batch == 32
    assert partial.repair.anti_memory_batch == 0


def test_recipes_inherit_through_base(tmp_path, monkeypatch):
    vit, convnext = load_recipe("vit"), load_recipe("convnext")
    assert vit.impair.lr == 3e-4 and convnext.impair.lr == 1e-3
    assert vit.replace({"impair.lr": 1e-3}).to_dict() | {"name": 0, "description": 0, "matches": 0} == \
        convnext.to_dict() | {"name": 0, "description": 0, "matches": 0}
    assert vit.matches != convnext.matches  # what names a file is never inherited

    import shutil

    from zeroshot_unlearn._resources import recipes_dir

    folder = tmp_path / "recipes"
    shutil.copytree(recipes_dir(), folder)
    monkeypatch.setenv("ZEROSHOT_UNLEARN_RECIPES", str(folder))
    (folder / "a.yaml").write_text("base: b\n")
    (folder / "b.yaml").write_text("base: a\n")
    with pytest.raises(RecipeError, match="inherit in a circle: a -> b -> a|inherit in a circle: b -> a -> b"):
        load_recipe("a")
    (folder / "a.yaml").write_text("base: convnxt\n")
    with pytest.raises(RecipeError, match="unknown base recipe 'convnxt'. Did you mean 'convnext'"):
        load_recipe("a")
    (folder / "a.yaml").write_text("base: digits\nimpair:\n  lr: 0.5\n")
    (folder / "b.yaml").unlink()
    mine = load_recipe("a")
    assert mine.impair.lr == 0.5 and mine.impair.epochs == load_recipe("digits").impair.epochs
    assert mine.min_epoch_images == 400 and mine.matches == ("*",)


def test_method_sections_are_declared_by_their_methods():
    from zeroshot_unlearn.methods import METHODS
    from zeroshot_unlearn.recipes import recipe_keys
    from zeroshot_unlearn.settings import SECTIONS

    for name, section in SECTIONS.items():
        owners = [m for m in METHODS.values() if m.section_name() == name]
        assert owners and all(m.settings is section for m in owners), name
    assert "masked_kd" in recipe_keys() and "impair" in recipe_keys()
    recipe = load_recipe("digits")
    assert recipe.masked_kd.distill_temperature == 8.0 and recipe.scrub.max_epochs == 2
    # the sections of methods that read forget images no longer carry anti-memory settings
    assert not hasattr(recipe.masked_kd, "anti_memory_batch") and not hasattr(recipe.gradient_ascent, "ce_weight")
    with pytest.raises(RecipeError, match="'masked_kd.epoch'.*Did you mean 'epochs'"):
        load_recipe("digits", {"masked_kd.epoch": 3})
    with pytest.raises(RecipeError, match="unknown recipe key 'mased_kd'.*Did you mean 'masked_kd'"):
        load_recipe("digits", {"mased_kd": {"epochs": 3}})


def test_recorded_reads_name_the_settings_read_through_the_view():
    from zeroshot_unlearn.settings import RecordedReads

    recipe = load_recipe("digits")
    keys: set[str] = set()
    view = RecordedReads(recipe, keys)
    view.impair.lr, view.masked_kd.epochs, view.name  # noqa: B018 (reading is what is recorded)
    view.to_dict()  # serialising is not reading
    recipe.repair.lr  # noqa: B018 (the recipe itself records nothing: only reads through a view do)
    assert keys == {"impair.lr", "masked_kd.epochs", "name"}
    keys.clear()
    view.section("masked_kd").epochs, view.impair.ranks_channels()  # noqa: B018 (a method's reads count too)
    assert {"masked_kd.epochs", "impair.perturb_scope"} <= keys <= {"masked_kd.epochs", "impair.perturb_scope",
                                                                   "impair.perturb_channels"}
    keys.clear()
    copy = view.generator.with_values(steps=3)
    assert copy.steps == 3 and keys == {"generator.steps"} and recipe.generator.steps != 3
    keys.clear()
    assert view.replace({"impair.lr": 0.5}).impair.lr == 0.5 and keys == {"impair.lr"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.impair.lr = 1.0
    keys.clear()
    import copy
    import pickle

    copy.copy(view).impair.lr, copy.deepcopy(view).repair.lr  # noqa: B018 (copies still record into the set)
    assert keys == {"impair.lr", "repair.lr"} and pickle.loads(pickle.dumps(view.impair)).epochs == recipe.impair.epochs
    assert view.unwrap() is recipe


def test_depth_is_a_validated_choice_with_a_measured_setting_per_family(digits_model, digits_retain):
    from conftest import FAST
    from zeroshot_unlearn import forget_classes, plan_request

    with pytest.raises(RecipeError, match="'depth' = 'deep' is not valid; choose one of: output, representation"):
        forget_classes(digits_model, [3, 7], retain=digits_retain, depth="deep")
    with pytest.raises(RecipeError, match="'digits' has no measured depth='representation' setting.*cifar_resnet"):
        forget_classes(digits_model, [3, 7], retain=digits_retain, depth="representation")
    with pytest.raises(RecipeError, match="representation section.*unknown recipe key 'impair.epoch'"):
        load_recipe("digits", {"representation": {"impair.epoch": 3}})
    assert load_recipe("cifar_resnet").representation["impair.perturb_scope"] == ["layer3"]
    # the family's setting applies under depth=representation, and the caller's overrides still win
    mine = {"representation": {"impair.epochs": 3.0, "impair.lr": 0.05}, "impair.lr": 0.04}
    plan = plan_request(digits_model, [3, 7], retain=digits_retain, overrides={**mine, "depth": "representation"})
    assert plan.recipe.depth == "representation" and plan.recipe.impair.epochs == 3.0 and plan.recipe.impair.lr == 0.04
    assert plan_request(digits_model, [3, 7], retain=digits_retain, overrides=mine).recipe.impair.epochs == 2.0
    result = forget_classes(digits_model, [3, 7], retain=digits_retain, depth="representation",
                            overrides={**FAST, "representation": {"impair.shrink": 0.5,
                                                                  "impair.perturb_scope": ["features"]}},
                            progress=False)
    assert result.history[-1]["depth"] == "representation" and "depth" in result.recipe_keys_read


def test_cifar_resnets_data_free_setting_applies_only_without_retained_data():
    from zeroshot_unlearn.plan import plan_request
    from zeroshot_unlearn.zoo import build_model

    for name in ("cifar10_resnet20", "cifar100_resnet20"):
        model = build_model(name)
        data_free = plan_request(model, [3], retain=None).recipe
        # the family's measured data-free weight over the mode's own, which keeps its other settings
        assert data_free.impair.anti_memory_weight == 16.0 and data_free.impair.epochs == 1.5
        assert plan_request(model, [3], retain=None, overrides={"impair.anti_memory_weight": 9.0}
                                ).recipe.impair.anti_memory_weight == 9.0  # the caller's override wins
    assert load_recipe("cifar_resnet").impair.anti_memory_weight == 6.0  # with retained data: unchanged
