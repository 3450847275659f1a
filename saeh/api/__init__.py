"""The Python API that `saeh` exports (`saeh.load_model`, `saeh.CodeIndex`, `saeh.train`, `saeh.evaluate`), one
module per job: `hash_model` (a trained model and its encoding), `code_index` (a saved, searchable index of codes),
`train` (training with the script's settings). See docs/API.md."""
