"""Reference data: registry with checksums and citations, loaders, region-name harmonisation."""

from .fetch import (FetchPlan, clear_download_cache, dataset_status, fetch_dataset, fetch_file,
                    is_offline, plan_fetch, sha256sum)
from .loaders import (ATLASES, CELL_TYPES, DONORS, Atlas, check_genes, load_amyloid_groups,
                      load_atlas, load_brain_mask, load_celltypes, load_connectome,
                      load_dk83_regions, load_gene_set, load_l1000_table, load_open_targets,
                      load_pathology, load_pathology_map, load_region_distances,
                      load_regional_expression, load_sample_celltypes, load_samples,
                      load_template, load_tissue_probabilities, validate_expression_table)
from .regions import adni86_order, convert, dk83_order, region_table, to_keys
from .registry import Dataset, get_dataset, list_datasets

__all__ = [
    "ATLASES", "Atlas", "CELL_TYPES", "DONORS", "Dataset", "FetchPlan", "adni86_order",
    "check_genes", "clear_download_cache", "convert", "dataset_status", "dk83_order", "fetch_dataset", "fetch_file", "get_dataset",
    "is_offline", "list_datasets", "load_amyloid_groups", "load_atlas", "load_brain_mask", "load_celltypes",
    "load_connectome", "load_dk83_regions", "load_gene_set", "load_l1000_table",
    "load_open_targets", "load_pathology", "load_pathology_map", "load_region_distances",
    "load_regional_expression", "load_sample_celltypes", "load_samples", "load_template",
    "load_tissue_probabilities", "plan_fetch", "region_table", "sha256sum", "to_keys",
    "validate_expression_table",
]
