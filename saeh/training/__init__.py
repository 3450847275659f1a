"""The one training loop for every deep method, by job:

- `loop`: `train`, the loop itself (Keras `fit` with the method's recipe, resume, model selection);
- `compiled_model`: the method's model as it trains (dtype policy, batch loss, optimiser, targets);
- `callbacks`: the warm-up, the stop at a non-finite loss, the warning when the codes collapse;
- `checkpoints`: the checkpoint format, written after each epoch and read back to resume;
- `run_states`: a run folder's life cycle (new, resume, finished; the chief and the other workers).

Only `train` and what it returns, `TrainedRun`, are named here; the rest is imported from its module.
"""

from saeh.training.loop import train
from saeh.training.run_states import TrainedRun

__all__ = ["train", "TrainedRun"]
