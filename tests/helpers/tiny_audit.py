"""A tiny audit config on the embedded demo data (stand-in models ``pooled`` and ``pooled-2``,
patched in by the tests): verification and identification attacks, the minimal search and a
defense, in seconds."""

CONFIG = """
[run]
seed = 3
batch_size = 8

[data]
root = "{root}"
clean_pairs_per_fold = 4
attack_pairs = 8

[identification]
enabled = true
identities = 20
images_per_identity = 20
gallery_per_identity = 10
min_images = 20
probes = 8

[models]
victim = "pooled"
others = ["pooled-2"]

[[attack]]
name = "fgsm"
epsilons = ["1/255", "4/255"]
goals = ["dodging", "impersonation"]

[[attack]]
name = "pgd"
epsilons = ["1/255", "4/255"]
steps = 3
goals = ["dodging", "untargeted"]

[minimal]
enabled = true
attack = "pgd"
steps = 3
goal = "impersonation"
samples = 4

[[defense]]
spec = "jpeg:q=75"
attack = "pgd"
epsilons = ["4/255"]
steps = 3
goal = "untargeted"
eot = 1
samples = 8
"""


def trajectory_config(root: str) -> str:
    """The tiny audit's data and models with only a two-variant trajectory detector (needs a
    hookable stand-in such as ``TinyResNet`` as the victim): one shard per variant."""
    text = CONFIG.format(root=root)
    return text[:text.index("[[attack]]")] + TRAJECTORY


TRAJECTORY = """
[[detector]]
name = "trajectory"
variants = ["M-cosine", "C-l2"]
options = {hidden = 8, epochs = 3}
attacks = ["bim"]
samples = 16
steps = 2
adaptive_samples = 4
adaptive_steps = 2
adaptive_epsilons = ["4/255"]
adaptive_weights = [1.0]
"""
