"""``brainexpr fit``: fit a model to sample sites or to a regional table; one model file.

``--model auto`` (the default) fits donor kriging to sample sites and the factorized INR
to parcel means (see :func:`brainexpr.workflows.models.fit_model` and BENCHMARKS.md).
"""

from __future__ import annotations

import argparse

from ..models.inr import VALUE_SCALINGS
from ..models.registry import model_name, workflow_models
from ..workflows.models import fit_model

HELP = ("fit a model to AHBA samples (default: donor kriging) or a regional table (default: "
        "factorized INR)")


# ----------------------------------------------------------------- helpers shared by the
# INR subcommands (embed, fit, predict, parcellate)
def gene_list(text: str) -> list[str]:
    """Split ``"APOE,MAPT"`` into gene names."""
    genes = [g.strip() for g in text.split(",") if g.strip()]
    if not genes:
        raise argparse.ArgumentTypeError("expected gene names separated by commas")
    return genes


def optional_int(text: str):
    """An integer, or ``none``/``all``/``auto`` for None."""
    if text.lower() in ("none", "all", "auto"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'none', got {text!r}") from None


def flatten_genes(groups):
    """``--genes A,B --genes C`` arrives as a list of lists; flatten it (None stays None)."""
    if groups is None:
        return None
    return [g for group in groups for g in group]


def add_genes_argument(parser, help_text: str) -> None:
    parser.add_argument("--genes", type=gene_list, action="append", default=None, help=help_text)


def add_source_arguments(parser, default_source: str = "celltypes") -> None:
    parser.add_argument("--source", default=default_source,
                        help="training values: 'celltypes' (8 cell-type fractions at the 3,702 "
                             "AHBA sites), 'regional' (AHBA DK-83 table), a CSV/TSV file or a "
                             f"'brainexpr ahba' output folder (default: {default_source})")
    add_genes_argument(parser, "genes (or cell types) to use, comma-separated (default: all of "
                               "the source, or --gene-set for 'regional')")
    parser.add_argument("--gene-set", default="ad", choices=["ad", "ad114", "l1000"],
                        help="gene set of the 'regional' source or an ahba folder without "
                             "--genes (default: ad)")
    parser.add_argument("--atlas", default="dk83",
                        help="atlas of a regional table (default: dk83)")


# ----------------------------------------------------------------- fit
def add_arguments(parser):
    add_source_arguments(parser)
    parser.add_argument("--model", choices=["auto", *workflow_models()], default="auto",
                        help="'auto' (default): donor-kriging for sample sites, factorized "
                             "(INR ensemble) for parcel means, the most accurate on held-out "
                             "data (BENCHMARKS.md); INRs and parcel-kriging fit any source; "
                             "nearest, knn, kriging, donor-kriging fit sample sites only")
    parser.add_argument("--out", default="model.pt",
                        help="model file, written during training too (default: model.pt)")
    parser.add_argument("--affinity", default="shifted",
                        help="gene-axis affinity (see brainexpr embed; default: shifted)")
    parser.add_argument("--gene-axis", default=None,
                        help="output folder of 'brainexpr embed' on the same training data: its "
                             "gene axis is used instead of computing it again")
    arch = parser.add_argument_group("INR network (INR models only; defaults: the paper's "
                                     "12 x 512 SIREN)")
    arch.add_argument("--n-layers", type=int, default=12, help="linear maps per SIREN (12)")
    arch.add_argument("--hidden-features", type=int, default=512, help="units per layer (512)")
    arch.add_argument("--omega-0", type=float, default=None,
                      help="SIREN frequency factor (default: 30 for paper/per_gene, 3 for "
                           "factorized)")
    arch.add_argument("--n-frequencies", type=int, default=10,
                      help="positional-encoding frequencies of e_g (10)")
    arch.add_argument("--n-features", type=int, default=64, help="factorized: trunk features K (64)")
    arch.add_argument("--gene-hidden", type=int, default=64, help="factorized: gene-net width (64)")
    arch.add_argument("--gene-layers", type=int, default=2, help="factorized: gene-net layers (2)")
    train = parser.add_argument_group("INR training (INR models only, except --random-state)")
    train.add_argument("--learning-rate", type=float, default=1e-4, help="Adam learning rate (1e-4)")
    train.add_argument("--max-steps", type=int, default=5000, help="steps per member (5000)")
    train.add_argument("--batch-size", type=optional_int, default=None,
                       help="sites or parcels per step (default: auto)")
    train.add_argument("--validation-fraction", type=float, default=0.1,
                       help="fraction held out in spatial blocks for early stopping (0.1)")
    train.add_argument("--validation-block-mm", type=float, default=20.0,
                       help="edge of the held-out cubic blocks in mm (20)")
    train.add_argument("--eval-every", type=int, default=50, help="steps between validations (50)")
    train.add_argument("--patience", type=int, default=20,
                       help="validations without improvement before stopping (20)")
    train.add_argument("--value-scaling", choices=list(VALUE_SCALINGS), default="standard",
                       help="per-gene value scaling (standard)")
    train.add_argument("--parcel-samples", type=optional_int, default=32,
                       help="regional fits: voxels drawn per parcel and step, 'all' for exact "
                            "parcel means (32)")
    train.add_argument("--n-ensemble", type=int, default=1,
                       help="independently seeded fits; >= 2 gives uncertainty maps (1)")
    train.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    train.add_argument("--random-state", type=optional_int, default=0, help="seed (0)")
    train.add_argument("--checkpoint-every", type=int, default=500,
                       help="steps between checkpoints (500)")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted fit from --out")


def run(args) -> int:
    model = fit_model(
        source=args.source, genes=flatten_genes(args.genes), gene_set=args.gene_set,
        atlas=args.atlas, model=args.model, out=args.out, affinity=args.affinity,
        gene_axis=args.gene_axis,
        n_layers=args.n_layers, hidden_features=args.hidden_features, omega_0=args.omega_0,
        n_frequencies=args.n_frequencies, n_features=args.n_features,
        gene_hidden=args.gene_hidden, gene_layers=args.gene_layers,
        learning_rate=args.learning_rate, max_steps=args.max_steps, batch_size=args.batch_size,
        validation_fraction=args.validation_fraction,
        validation_block_mm=args.validation_block_mm, eval_every=args.eval_every,
        patience=args.patience, value_scaling=args.value_scaling,
        parcel_samples=args.parcel_samples, n_ensemble=args.n_ensemble, device=args.device,
        random_state=args.random_state, checkpoint_every=args.checkpoint_every,
        resume=args.resume, data_dir=args.data_dir)
    name = model_name(model)
    if model.capabilities.network:
        summary = model.summary()
        print(f"fitted {name} on {summary['n_genes']} genes ({model.fit_kind_}); best steps "
              f"{summary['best_step']}, validation MSE {summary['best_validation_mse']}; "
              f"wrote {args.out}")
    else:
        kind = model.provenance_.get("kind", "samples")
        print(f"fitted {name} on {model.n_genes_} genes ({kind}); wrote {args.out}")
    return 0
