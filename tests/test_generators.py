import pytest
import torch
import torch.nn.functional as F

from zeroshot_unlearn.augment import Augment
from zeroshot_unlearn.surgery import frozen_batchnorm
from zeroshot_unlearn.generators import NoiseGenerator, create_generator, fit_generator
from zeroshot_unlearn.recipes import AugmentConfig, GeneratorConfig

MEAN, STD = (0.1307,), (0.3081,)


def test_noise_bank_labels_each_class_separately():
    gen = NoiseGenerator(10, (1, 28, 28), MEAN, STD, forget=[3, 7], samples_per_class=4)
    with torch.no_grad():
        gen.bank[0].fill_(3.0)
        gen.bank[1].fill_(7.0)
    samples = gen.sample(torch.tensor([3, 7, 7, 3]))
    assert samples[0].unique().tolist() == [3.0] and samples[1].unique().tolist() == [7.0]
    with pytest.raises(ValueError, match="not"):
        gen.sample(torch.tensor([5]))


@pytest.mark.parametrize("kind", ["noise", "network"])
def test_error_max_generator_raises_the_loss_of_each_forget_class(digits_model, kind):
    torch.manual_seed(0)  # the generator's initialisation: independent of which tests ran before
    cfg = GeneratorConfig(kind=kind, objective="error_max", steps=30, lr=0.05)
    gen = create_generator(cfg, num_classes=10, input_size=(1, 28, 28), mean=MEAN, std=STD, forget=[3, 7])
    aug = Augment(AugmentConfig(crop_padding=2, flip=False), MEAN, STD, (28, 28))
    labels = torch.tensor([3, 7] * 32)
    with torch.no_grad():
        before = F.cross_entropy(digits_model(gen.sample(labels)), labels)
    fit_generator(gen, digits_model, [3, 7], cfg, aug, progress=False)
    with torch.no_grad():
        after = F.cross_entropy(digits_model(gen.sample(labels)), labels)
    assert after > before + 1.0


def test_impression_generator_makes_samples_of_each_class(digits_model):
    cfg = GeneratorConfig(objective="impression", steps=40, bn_prior_weight=0.05)
    gen = create_generator(cfg, num_classes=10, input_size=(1, 28, 28), mean=MEAN, std=STD, forget=[3, 7])
    aug = Augment(AugmentConfig(crop_padding=2, flip=False), MEAN, STD, (28, 28))
    torch.manual_seed(0)
    fit_generator(gen, digits_model, [3, 7], cfg, aug, progress=False)
    for c in (3, 7):
        with torch.no_grad():
            predicted = digits_model(gen.sample(torch.full((64,), c))).argmax(1)
        assert (predicted == c).float().mean() > 0.5


def test_fitting_leaves_the_model_untouched(digits_model):
    before = {k: v.clone() for k, v in digits_model.state_dict().items()}
    cfg = GeneratorConfig(steps=3, bn_prior_weight=0.05)
    gen = create_generator(cfg, num_classes=10, input_size=(1, 28, 28), mean=MEAN, std=STD, forget=[1])
    fit_generator(gen, digits_model, [1], cfg, Augment(AugmentConfig(), MEAN, STD, (28, 28)), progress=False)
    after = digits_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in digits_model.parameters())


def test_synthetic_batches_do_not_touch_batchnorm_statistics(model_copy):
    model_copy.train()
    bn = model_copy.features[1]
    before = bn.running_mean.clone()
    with frozen_batchnorm(model_copy):
        model_copy(torch.randn(8, 1, 28, 28) * 5)
    assert torch.equal(bn.running_mean, before) and bn.training
    model_copy(torch.randn(8, 1, 28, 28) * 5)
    assert not torch.equal(bn.running_mean, before)


def test_augment_checks_shapes_and_keeps_range():
    aug = Augment(AugmentConfig(crop_padding=2, flip=True, color_jitter=0.2, noise_std=0.05), MEAN, STD, (28, 28))
    x = torch.randn(4, 1, 28, 28)
    out = aug(x)
    assert out.shape == x.shape
    pixels = out * STD[0] + MEAN[0]
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    with pytest.raises(ValueError, match="expected a batch"):
        aug(torch.randn(4, 3, 28, 28))
