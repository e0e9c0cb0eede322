"""Seed offsets: each random stream of a run draws from ``seed + OFFSET``, apart from every other.

They are part of what a seed reproduces: changing one changes every result recorded with it.
"""

IMPAIR = 1
"""The impair phase's retained batches and its shrink-and-perturb noise."""
REPAIR = 2
"""The repair phase's retained batches and its shrink-and-perturb noise."""
RETAINED_ONLY = 3
"""The retained batches of the retained-data-only baselines (``masked_kd``, ``finetune``, ``retrain``)."""
FORGET_BASELINE_RETAINED = 4
"""The retained batches of ``gradient_ascent`` and ``random_label``."""
FORGET_BASELINE_FORGET = 5
"""Their forget-image batches."""
BAD_TEACHER_BATCHES = 6
BAD_TEACHER_INIT = 7
"""The incompetent teacher's random initialisation."""
SCRUB_RETAINED = 8
SCRUB_FORGET = 9
GKT_STUDENT_INIT = 11
RETRAIN_INIT = 12
SELF_CHECK = 101
"""The self-check's class impressions."""
RANK_STRIDE = 7919
"""Under torchrun rank r's global torch seed is ``seed + RANK_STRIDE * r`` (its own augmentations and
anti-memories); rank 0 is the one-process run."""
AMNESIAC_RETUNE = 13
"""The retained batches of ``amnesiac``'s retuning."""
CHANNEL_RANKING = 14
"""The anti-memories ``impair.perturb_channels`` ranks channels with (the same on every rank)."""
HEAD_MEMORIES = 15
"""The data-free mode's memories at the head's input (``train_scope: head``): their starting points."""
FRESH_ROWS = 16
"""``forget_rows: fresh``: the forget classes' head rows drawn as a new head's are."""
