"""Names of the files in a run directory (DESIGN.md, "The run directory"); stages find each
other's outputs by these names."""

CHECKPOINT_DIR = "checkpoints"
ALPHAS_FILE = "alphas.jsonl"  # search: op weights per epoch
DERIVED_FILE = "derived.json"  # search/derive: the strategy's architecture
WIRING_FILE = "wiring.jsonl"  # search: wiring-bias diagnostics per epoch
WIRING_DIR = "wiring"  # search: op-weight heatmaps per epoch
SUPERNET_FILE = "supernet.ckpt"  # search: the trained supernet (Lightning checkpoint)
FINETUNED_FILE = "finetuned.ckpt"  # finetune: the supernet after the single-path fine-tune
FINETUNE_DIR = "finetune"  # finetune: its checkpoints and logs
PRUNED_FILE = "pruned.json"  # finetune: the ops kept per edge and their one-shot ratings
SPLIT_DIR = "split"  # split: one sub-supernet checkpoint per leaf (and their trainings)
SPLITS_FILE = "splits.json"  # split: the tree of sub-supernets and the leaves' restrictions
ARCHIVE_FILE = "archive.jsonl"  # sample/evolve: every evaluated arch
PREDICTOR_FILE = "predictor.pt"  # evolve: the predictor's last fit
SHORTLIST_FILE = "shortlist.json"  # shortlist: the best-scored archs after brief training
FINAL_FILE = "final.json"  # export: the final architecture and its figures
SUBNET_FILE = "subnet.pt"  # export: standalone network with inherited weights
ONNX_FILE = "subnet.onnx"  # export
SUMMARY_FILE = "summary.md"  # export
PLOTS_DIR = "plots"  # export
RETRAIN_FILE = "retrain.json"  # retrain: test accuracy, params, epochs
RETRAIN_DIR = "retrain"  # retrain: its checkpoints and logs
SCORER_FILE = "scorer.json"  # a combined scorer's reference archs and their components
FEATURES_FILE = "features.json"  # the predictor features' reference archs and values
