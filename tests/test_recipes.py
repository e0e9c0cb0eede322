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
    from zeroshot_unlearn.zoo.trained import get_train_spec, list_train_specs

    for name in list_train_specs():
        assert resolve_recipe_name(get_train_spec(name).architecture) != "default", name


def test_amortised_section_is_validated_like_the_recipe():
    with pytest.raises(RecipeError, match="amortised section.*epochz"):
        resolve_recipe({"amortised": {"impair.epochz": 1.0}}, "x")
    with pytest.raises(RecipeError, match="lr"):
        resolve_recipe({"amortised": {"impair.lr": -1.0}}, "x")
    assert load_recipe("cifar_resnet").amortised["impair.epochs"] < load_recipe("cifar_resnet").impair.epochs
