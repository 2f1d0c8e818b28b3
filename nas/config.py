"""Structured (dataclass) schemas of the Hydra config, so a mistyped key fails at start-up.

``conf/train.yaml`` puts ``train_schema`` first in its defaults list; every group file
merges into these typed nodes, and OmegaConf rejects unknown keys and wrong types with the
key's full name. Every knob a user may turn has its default here or in ``conf/``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

from nas.errors import ConfigError
from nas.evolution.refine import RefineConfig
from nas.predictor.models import TrainConfig as PredictorTrainConfig

#: the stages of a run, in order (``stages`` picks a subsequence)
STAGES = (
    "search",
    "derive",
    "finetune",
    "split",
    "sample",
    "evolve",
    "shortlist",
    "export",
    "retrain",
)


@dataclass
class DatasetConfig:
    name: str = "digits"
    root: str = "${paths.data_dir}"
    download: bool = True
    batch_size: int = 64
    eval_batch_size: int = 256
    num_workers: int = 0
    # batches made in the training device's memory (a GPU's: no host loader to wait for)
    on_device: bool = False
    train_portion: float = 0.5  # DARTS split: share of the training set that trains weights
    limit_train: int | None = None  # use only this many training images (quick runs)
    split_seed: int = 0
    augment: bool = True
    crop_padding: int = 4  # zero padding of the random training crops (when augment)
    test_fraction: float = 0.2  # digits: share held out as the test split
    # imagefolder
    train_dir: str | None = None
    test_dir: str | None = None
    mean: list[float] = field(default_factory=lambda: [0.4914, 0.4822, 0.4465])
    std: list[float] = field(default_factory=lambda: [0.2470, 0.2435, 0.2616])
    image_size: int | None = None
    # synthetic
    num_classes: int | None = None
    channels: int = 3
    n_train: int = 512
    n_test: int = 128
    noise: float = 1.0


@dataclass
class SpaceConfig:
    name: str = "darts"
    supernet: dict[str, Any] = field(default_factory=dict)  # build_supernet options
    subnet: dict[str, Any] = field(default_factory=dict)  # space constructor (standalone net)


@dataclass
class WeightOptimConfig:
    """The supernet's weight optimiser: SGD with cosine annealing, grad-norm clipping."""

    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0


@dataclass
class SearchConfig(WeightOptimConfig):
    strategy: str = "darts"
    epochs: int = 50
    # architecture: Adam
    arch_lr: float = 3e-4
    arch_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    arch_weight_decay: float = 1e-3
    alpha_init_std: float = 1e-3
    arch_warmup_epochs: int = 0  # alphas frozen for the first N epochs (strategies with alphas)
    beta_weight: float = 0.0  # β-decay term (betadarts; any DARTS-family strategy), ramped 0 -> it
    xi: float | None = None  # darts2 virtual-step learning rate (None: the weights' lr)
    tau_max: float = 10.0  # gdas Gumbel-softmax temperature, first epoch
    tau_min: float = 0.1  # ... last epoch
    zero_one_weight: float = 10.0  # fairdarts zero-one loss weight
    kl_weight: float = 1e-3  # drnas KL(Dirichlet || uniform prior) weight
    sampler: str = "uniform"  # single-path strategies (spos): uniform | fair | sandwich | distinct
    sandwich_random: int = 2  # sandwich: random paths per step besides the largest/smallest
    # sandwich: in-place distillation (BigNAS, arXiv 2003.11142): the largest path learns from
    # the labels, the other paths from its predictions
    distill: bool = False
    cuda_graph: bool = False  # CUDA: each step's forwards and backwards replayed as CUDA graphs


def _trainer_schema() -> type:
    """A dataclass with one field per ``pytorch_lightning.Trainer`` parameter (and ``_target_``).

    Every Trainer flag can be set from the command line without ``+`` and a mistyped one fails
    at composition with its name; the defaults stay Lightning's own (non-literal ones become
    ``None``, which the Trainer also accepts). ``callbacks`` and ``logger`` have config groups.
    """
    import pytorch_lightning as pl

    literal = (type(None), bool, int, float, str)
    fields: list[tuple[str, Any, Any]] = [("_target_", str, "pytorch_lightning.Trainer")]
    for name, param in inspect.signature(pl.Trainer.__init__).parameters.items():
        if name in ("self", "callbacks", "logger"):
            continue
        default = param.default if isinstance(param.default, literal) else None
        fields.append((name, Any, field(default=default)))
    return make_dataclass("TrainerConfig", fields)


TrainerConfig = _trainer_schema()


@dataclass
class FinetuneConfig(WeightOptimConfig):
    """Single-path fine-tune of the searched supernet, so that the one-shot scores of the
    sample and evolve stages rate trained single paths (the derived arch stays the search's)."""

    epochs: int = 10  # 0: score subnets with the searched weights as they are
    sampler: str = "uniform"  # uniform | fair (independent edges) | sandwich | distinct (NB201)
    # checkpoint averaging: the fit ends with the mean of the weights at the ends of its last
    # average_epochs epochs (0: the last weights)
    average_epochs: int = 0
    # prune the space before the fine-tune: drop the `prune` ops per edge whose paths score
    # worst one-shot on the searched supernet (rated on prune_paths random archs); the
    # fine-tune then trains the kept archs only (spaces with independent edges; 0: no pruning)
    prune: int = 0
    prune_paths: int = 50


@dataclass
class SplitConfig:
    """NAS-LID (arXiv 2211.12759): split the trained supernet into ``2 ** levels``
    sub-supernets along the edges whose ops behave most differently, fine-tune each
    (``finetune.*`` optimiser), and score each arch with the one it belongs to."""

    method: str | None = None  # null: no split | lid (NAS-LID) | gm (gradient matching)
    levels: int = 4  # 2-way splits per leaf: 16 sub-supernets
    epochs: int = 5  # single-path fine-tune epochs of each new sub-supernet
    batches: int = 4  # batches (of oneshot.batch_size) the ops are compared on
    paths: int = 4  # sampled paths per op the comparison averages over
    k: int = 20  # LID: nearest neighbours of the MLE


@dataclass
class OneShotConfig:
    """The one-shot evaluator: inherited weights, BatchNorm recalibrated per subnet."""

    calib_batches: int = 4  # batches of the weights half that recalibrate BatchNorm
    val_batches: int = 4  # batches of the arch (validation) half each subnet is scored on
    batch_size: int = 256
    metric: str = "accuracy"  # accuracy | loss (the negative mean cross-entropy)
    # score each arch by the path of its class's representative (space.canonical): equal
    # functions get equal scores, and a search.sampler=distinct supernet rates trained paths
    canonical: bool = False


#: ``search.strategy`` of a search that trains no supernet (``search=training_free``)
TRAINING_FREE = "training_free"


@dataclass
class ScorerConfig:
    """What ``sample`` and ``evolve`` query (``nas/evaluate/scorer.py``): the one-shot
    evaluator alone (``components: [oneshot]``), or the weighted mean of standardised
    components (``oneshot``, ``proxy:<name>``, ``params``, ``flops``)."""

    name: str = "oneshot"  # oneshot | proxy | hybrid: names the archive's source scorer:<name>
    components: list[str] = field(default_factory=lambda: ["oneshot"])
    weights: dict[str, float] = field(default_factory=dict)  # by component; default 1 each
    reference: int = 32  # random archs whose spread puts the components on one scale
    images: int = 128  # training images the proxies see (one fixed batch)


@dataclass
class SampleConfig:
    """The sample stage: the derived arch, then its neighbours, then random archs."""

    size: int = 20  # subnets scored (K)
    neighbours: int = 8  # at most this many neighbours of the derived arch
    prescreen_pool: int = (
        4  # with prescreen.proxy: each random arch is the proxy's best of this many
    )


@dataclass
class PrescreenConfig:
    """Training-free pre-screening of candidates by a zero-cost proxy (sample and refine)."""

    proxy: str | None = None  # a registered proxy (epsilon, synflow, naswot, ...); null: off
    images: int = 64  # training images the proxy sees


@dataclass
class ConstraintsConfig:
    """Limits every evaluated arch obeys (single-path network at the supernet's size)."""

    max_params: int | None = None
    max_flops: int | None = None  # per image, convolutions and matrix products
    max_latency_ms: float | None = None  # per batch of latency.batch_size, on the run's device


#: what ``objectives`` may hold beside ``score`` (maximised): each minimised
COST_OBJECTIVES = ("latency", "params", "flops")
#: how export picks from the front of several objectives
EXPORT_CHOICES = ("best", "knee")


@dataclass
class LatencyConfig:
    """The latency lookup table (``nas.cost.latency``), measured on the run's device for the
    space's standalone network and cached under ``cache_dir``."""

    batch_size: int = 1  # images per timed forward
    warmup: int = 3  # untimed calls before each timing
    repeats: int = 20  # timed calls; the median counts
    calibration: int = 5  # random archs timed end to end for the fixed part
    cache_dir: str = "${paths.root_dir}/.cache/latency"


@dataclass
class EvolutionConfig:
    algorithm: str = "refine"  # refine | regularized | random
    budget: int = 40  # one-shot evaluations beyond the sample stage's
    refine: RefineConfig = field(default_factory=RefineConfig)
    population_size: int = 10  # regularized evolution
    tournament_size: int = 3  # regularized evolution


@dataclass
class PredictorConfig:
    kind: str = "delta"  # delta | absolute
    decay: float = 0.5  # delta: a training pair's weight falls by this per edit beyond one...
    max_pairs: int = 20000  # ...and this many pairs are drawn by weight per fit
    k_nearest: int = 5  # delta: archived archs a prediction averages over
    # per-arch features beside the encoding (params, flops, proxy:<name>), each standardised
    # against random archs; the delta predictor reads their differences
    features: list[str] = field(default_factory=list)
    train: PredictorTrainConfig = field(default_factory=PredictorTrainConfig)


@dataclass
class ShortlistConfig:
    """The shortlist stage: the ``size`` best-scored archs, each trained briefly as a
    standalone network (``nas/evaluate/brief.py``); export takes the most accurate."""

    size: int = 0  # 0: off (export takes the best score)
    steps: int = 20  # SGD steps per arch, on the weights half
    batch_size: int = 64
    lr: float = 0.2  # the one-cycle schedule's peak: high, so that what trains badly shows
    weight_decay: float = 5e-4
    val_images: int = 1000  # of the arch half, that rate each arch


@dataclass
class ExportConfig:
    onnx: bool = True  # subnet.onnx, checked with onnxruntime (extra: export)
    plots: bool = True  # plots/ (extra: plots)
    # with several objectives: best (the best score under the constraints) | knee (the
    # front's point farthest from the line through its two ends, score against the first cost)
    choice: str = "best"


@dataclass
class RetrainConfig:
    """Training the final arch from scratch: the DARTS evaluation recipe (arXiv 1806.09055)."""

    epochs: int = 600
    batch_size: int = 96
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    drop_path: float = 0.2  # reached linearly at the last epoch
    auxiliary_weight: float = 0.4  # 0: no auxiliary head
    cutout: int = 16  # side of the zeroed square; 0: no cutout
    # share of the training split held out to validate each epoch (val/acc; the checkpoints
    # callback keeps the best by it); 0: no validation. The test split is only tested once,
    # after the last epoch: retrain.json's test_accuracy is the final weights'
    val_portion: float = 0.0


@dataclass
class PathsConfig:
    root_dir: str = "."
    data_dir: str = "${paths.root_dir}/data"
    output_dir: str = "${hydra:runtime.output_dir}"


@dataclass
class TrainConfig:
    name: str = "default"
    seed: int = 0
    resume: bool = True
    # last.ckpt is also written every this many optimizer steps (0: at epoch ends only)
    checkpoint_every_n_steps: int = 200
    stages: list[str] = field(default_factory=lambda: list(STAGES[:-1]))
    # what the search optimises: score (maximised), then any of COST_OBJECTIVES (minimised)
    objectives: list[str] = field(default_factory=lambda: ["score"])
    float32_matmul_precision: str = "high"  # torch.set_float32_matmul_precision
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    # instantiated with hydra.utils.instantiate
    trainer: TrainerConfig = field(default_factory=TrainerConfig)  # type: ignore[valid-type]
    callbacks: dict[str, Any] = field(default_factory=dict)
    logger: dict[str, Any] = field(default_factory=dict)
    scale: dict[str, Any] = field(default_factory=dict)  # per-space network sizes
    paths: PathsConfig = field(default_factory=PathsConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    oneshot: OneShotConfig = field(default_factory=OneShotConfig)
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    prescreen: PrescreenConfig = field(default_factory=PrescreenConfig)
    constraints: ConstraintsConfig = field(default_factory=ConstraintsConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    shortlist: ShortlistConfig = field(default_factory=ShortlistConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    # the arch to retrain: a final.json path or an arch string; null: this run's final.json
    arch: str | None = None


def register_configs() -> None:
    """Register the schema as ``train_schema`` (idempotent)."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


def _check_instantiable(group: str, node: Any) -> None:
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ConfigError(f"{group} needs a _target_ (the class to build), got {node!r}")


#: ``(key, smallest allowed value)`` of the numeric keys the schema types but does not bound
_AT_LEAST = (
    ("checkpoint_every_n_steps", 0),
    ("search.epochs", 1),
    ("search.arch_warmup_epochs", 0),
    ("search.beta_weight", 0),
    ("search.xi", 0),
    ("search.tau_min", 1e-6),
    ("search.zero_one_weight", 0),
    ("search.kl_weight", 0),
    ("search.sandwich_random", 0),
    ("finetune.epochs", 0),
    ("finetune.average_epochs", 0),
    ("finetune.prune", 0),
    ("finetune.prune_paths", 1),
    ("predictor.max_pairs", 1),
    ("predictor.k_nearest", 1),
    ("split.levels", 1),
    ("split.epochs", 0),
    ("split.batches", 1),
    ("split.paths", 1),
    ("split.k", 1),
    ("retrain.epochs", 1),
    ("retrain.batch_size", 1),
    ("dataset.batch_size", 1),
    ("dataset.eval_batch_size", 1),
    ("sample.size", 1),
    ("sample.neighbours", 0),
    ("sample.prescreen_pool", 1),
    ("evolution.budget", 0),
    ("evolution.population_size", 1),
    ("evolution.tournament_size", 1),
    ("oneshot.calib_batches", 1),
    ("oneshot.val_batches", 1),
    ("oneshot.batch_size", 1),
    ("prescreen.images", 1),
    ("scorer.reference", 2),
    ("shortlist.size", 0),
    ("shortlist.steps", 1),
    ("shortlist.batch_size", 1),
    ("shortlist.val_images", 1),
    ("scorer.images", 2),
    ("constraints.max_params", 1),
    ("constraints.max_flops", 1),
    ("latency.batch_size", 1),
    ("latency.warmup", 0),
    ("latency.repeats", 1),
    ("latency.calibration", 1),
)


def _choices(cfg: Any) -> list[tuple[str, Any, list[str]]]:
    """``(key, value, allowed values)`` of every key that names a registered part."""
    from nas.data import available_datasets
    from nas.evaluate.oneshot import METRICS as ONESHOT_METRICS
    from nas.evaluate.proxies import available_proxies
    from nas.predictor import PREDICTORS
    from nas.search import available_strategies
    from nas.search.single_path import SAMPLERS
    from nas.spaces import available_spaces
    from nas.split.measure import METHODS as SPLIT_METHODS

    out = [
        ("dataset.name", cfg.dataset.name, available_datasets()),
        ("space.name", cfg.space.name, list(available_spaces())),
        ("search.strategy", cfg.search.strategy, [*available_strategies(), TRAINING_FREE]),
        ("search.sampler", cfg.search.sampler, list(SAMPLERS)),
        ("finetune.sampler", cfg.finetune.sampler, list(SAMPLERS)),
        ("predictor.kind", cfg.predictor.kind, sorted(PREDICTORS)),
        ("evolution.algorithm", cfg.evolution.algorithm, ["refine", "regularized", "random"]),
        ("oneshot.metric", cfg.oneshot.metric, list(ONESHOT_METRICS)),
        ("export.choice", cfg.export.choice, list(EXPORT_CHOICES)),
    ]
    if cfg.prescreen.proxy is not None:
        out.append(("prescreen.proxy", cfg.prescreen.proxy, available_proxies()))
    if cfg.split.method is not None:
        out.append(("split.method", cfg.split.method, list(SPLIT_METHODS)))
    return out


def _check_scorer(scorer: Any, features: Any) -> None:
    """``scorer.components`` are known and distinct, ``scorer.weights`` name only them;
    ``predictor.features`` are known components other than ``oneshot`` and distinct."""
    from nas.evaluate.proxies import available_proxies

    known = ["oneshot", "params", "flops", *(f"proxy:{p}" for p in available_proxies())]
    if len(set(features)) != len(features):
        raise ConfigError(f"predictor.features={list(features)} must be distinct")
    for name in features:
        if name not in known[1:]:
            raise ConfigError(f"unknown predictor.features entry {name!r}; known: {known[1:]}")
    components = list(scorer.components)
    if not components or len(set(components)) != len(components):
        raise ConfigError(f"scorer.components={components} must be distinct and not empty")
    for name in components:
        if name not in known:
            raise ConfigError(f"unknown scorer.components entry {name!r}; known: {known}")
    extra = sorted(set(scorer.weights) - set(components))
    if extra:
        raise ConfigError(f"scorer.weights names {extra}, not in scorer.components={components}")


def _check_objectives(cfg: Any) -> None:
    objectives = list(cfg.objectives)
    if not objectives or objectives[0] != "score" or len(set(objectives)) != len(objectives):
        raise ConfigError(
            f"objectives={objectives} must start with score and name each objective once "
            f"(e.g. objectives=[score,latency])"
        )
    unknown = [o for o in objectives[1:] if o not in COST_OBJECTIVES]
    if unknown:
        raise ConfigError(
            f"unknown objective(s) {unknown} in objectives; known: score, {', '.join(COST_OBJECTIVES)}"
        )
    budget = cfg.constraints.max_latency_ms
    if budget is not None and not budget > 0:
        raise ConfigError(f"constraints.max_latency_ms={budget} must be > 0 (milliseconds)")
    if cfg.export.choice == "knee" and len(objectives) < 2:
        raise ConfigError(
            f"export.choice=knee needs a front of two objectives; objectives={objectives} "
            "(e.g. objectives=[score,latency])"
        )


def check_config(cfg: Any) -> None:
    """Start-up checks that the schema cannot express; raise :class:`ConfigError` naming the key
    (before anything trains).

    * ``search.epochs`` is the one epoch count: ``trainer.max_epochs`` follows it;
    * every ``callbacks.<name>`` and ``logger.<name>`` has a ``_target_``;
    * ``stages`` are known and in order;
    * counts are within range (``search.epochs=-1`` would be an unbounded run to Lightning);
    * every name of a registered part (dataset, space, strategy, sampler, proxy, predictor,
      evolution algorithm) is known, and the refiner's knobs are valid.
    """
    from omegaconf import OmegaConf

    from nas.spaces import get_space

    for key, least in _AT_LEAST:
        value = OmegaConf.select(cfg, key)
        if value is not None and value < least:
            raise ConfigError(f"{key}={value} is invalid: it must be >= {least}")
    for key, value, allowed in _choices(cfg):
        if value not in allowed:
            raise ConfigError(f"unknown {key}={value!r}; allowed: {allowed}")
    try:
        RefineConfig(**cfg.evolution.refine)
    except ValueError as err:
        raise ConfigError(f"evolution.{err}") from None

    if cfg.search.strategy == TRAINING_FREE and "oneshot" in cfg.scorer.components:
        raise ConfigError(
            f"search=training_free trains no supernet, so scorer.components="
            f"{list(cfg.scorer.components)} cannot hold oneshot (use scorer=proxy)"
        )
    if (
        cfg.search.strategy not in ("spos", TRAINING_FREE)
        and cfg.search.arch_warmup_epochs >= cfg.search.epochs
    ):
        warnings.warn(
            f"search.arch_warmup_epochs={cfg.search.arch_warmup_epochs} >= search.epochs="
            f"{cfg.search.epochs}: the architecture parameters never train",
            stacklevel=2,
        )
    if cfg.split.method is not None and not get_space(cfg.space.name).independent_edges:
        raise ConfigError(
            f"split.method={cfg.split.method} splits edges whose ops are chosen independently; "
            f"space.name={cfg.space.name} does not have such edges (use space=nb201)"
        )
    if cfg.split.method is not None and "ddp" in str(cfg.trainer.get("strategy")):
        raise ConfigError(
            f"split.method={cfg.split.method} trains its sub-supernets on one process: run the "
            f"split without trainer=ddp (e.g. stages=[split,sample,evolve,export] trainer=gpu)"
        )
    samplers = {
        key: OmegaConf.select(cfg, key)
        for key, used in (
            ("search.sampler", cfg.search.strategy == "spos"),
            ("finetune.sampler", "finetune" in cfg.stages and cfg.finetune.epochs > 0),
        )
        if used
    }
    space = get_space(cfg.space.name)
    f = cfg.finetune
    if f.prune and "finetune.sampler" in samplers:
        if not space.independent_edges:
            raise ConfigError(
                f"finetune.prune={f.prune} prunes a space whose edges choose ops independently; "
                f"space.name={cfg.space.name} does not (use space=nb201, or finetune.prune=0)"
            )
        if f.prune >= len(space.op_names):
            raise ConfigError(
                f"finetune.prune={f.prune} must leave an op on every edge: below the "
                f"{len(space.op_names)} ops of space {cfg.space.name!r}"
            )
        if f.sampler != "uniform":
            raise ConfigError(
                f"finetune.prune={f.prune} fine-tunes the kept archs uniformly: set "
                f"finetune.sampler=uniform (got {f.sampler!r})"
            )
    for key, sampler in samplers.items():
        if sampler == "fair" and not space.independent_edges:
            raise ConfigError(
                f"{key}=fair needs a space whose edges choose ops independently; space.name="
                f"{cfg.space.name} does not (use {key}=uniform or sandwich, or space=nb201)"
            )
        if sampler == "distinct" and space.distinct_archs() is None:
            raise ConfigError(
                f"{key}=distinct needs a space that lists its distinct archs; space.name="
                f"{cfg.space.name} does not (use {key}=uniform, or space=nb201)"
            )
    _check_scorer(cfg.scorer, cfg.predictor.features)
    _check_objectives(cfg)
    if "retrain" in cfg.stages and not 0 <= cfg.retrain.val_portion < 1:
        raise ConfigError(f"retrain.val_portion={cfg.retrain.val_portion} must be in [0, 1)")
    if cfg.shortlist.lr <= 0 or cfg.shortlist.weight_decay < 0:
        raise ConfigError(
            f"shortlist.lr={cfg.shortlist.lr} must be > 0 and shortlist.weight_decay="
            f"{cfg.shortlist.weight_decay} >= 0"
        )
    if not 0 < cfg.predictor.decay <= 1:
        raise ConfigError(f"predictor.decay={cfg.predictor.decay} must be in (0, 1]")
    if cfg.search.tau_max < cfg.search.tau_min:
        raise ConfigError(
            f"search.tau_max={cfg.search.tau_max} must be >= search.tau_min={cfg.search.tau_min}"
        )
    trainer = cfg.trainer
    if cfg.search.strategy == "darts2" and str(trainer.get("precision")) in ("16", "16-mixed"):
        raise ConfigError(
            "search.strategy=darts2 computes its hypergradient without fp16 loss scaling: "
            "use trainer.precision=bf16-mixed or 32-true"
        )
    if trainer.get("max_epochs") != cfg.search.epochs:
        raise ConfigError(
            f"trainer.max_epochs={trainer.get('max_epochs')} differs from search.epochs="
            f"{cfg.search.epochs}: the epoch count is search.epochs (trainer.max_epochs follows it)"
        )
    for group in ("callbacks", "logger"):
        for name, node in (cfg[group] or {}).items():
            _check_instantiable(f"{group}.{name}", node)
    unknown = [s for s in cfg.stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown} in stages; known, in order: {list(STAGES)}")
    order = [STAGES.index(s) for s in cfg.stages]
    if order != sorted(set(order)):
        raise ConfigError(
            f"stages={list(cfg.stages)} must be distinct and in the order {list(STAGES)}"
        )
