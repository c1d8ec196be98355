"""Tools beside the engine: `analyze` (how well binarization keeps geometry; angles.py holds the
theory), `bench` (side-by-side benchmarks), `fuzz` (mutation fuzzing of the model loaders)."""
