"""Training: one Config, windowed sampling, masked loss, a resumable trainer, events, predictions.

    from vegviz.training import Config, train
    run = train(Config(model="convlstm", max_epochs=50))     # data: the virtual basin
    run.history                                              # per-epoch metrics
    run.predictions                                          # xr.Dataset on the study grid

For dashboards: ``Trainer(config).subscribe(callback)``, ``Trainer.start()`` (background
thread) and ``Trainer.request_stop()``; see :mod:`vegviz.training.events`.
"""
from .checkpoint import file_sha256, load_checkpoint, save_checkpoint, write_atomic
from .config import Config, ConfigError, ModelConfig, OptimizerConfig, Periods
from .data import open_data, prepare
from .device import Hardware, resolve
from .events import (BatchEvent, EndEvent, EpochEvent, ErrorEvent, Event, EventBus, EventLog, StartEvent,
                     StopEvent)
from .loss import masked_error_sum, masked_loss, valid_mask
from .inference import predict, write_predictions
from .lock import RunBusyError, RunLock
from .run import Run, default_run_dir, runs_root, train
from .trainer import Trainer, build_model, median_nse
from .windows import DataError, Normalization, PeriodArrays, epoch_windows, fit_normalization, load_period

__all__ = [
    "BatchEvent", "Config", "ConfigError", "DataError", "EndEvent", "EpochEvent", "ErrorEvent", "Event",
    "EventBus", "EventLog", "Hardware", "ModelConfig", "Normalization", "OptimizerConfig", "PeriodArrays",
    "Periods", "Run", "RunBusyError", "RunLock", "StartEvent", "StopEvent", "Trainer", "build_model",
    "default_run_dir", "epoch_windows", "file_sha256", "fit_normalization", "load_checkpoint", "load_period",
    "masked_error_sum", "masked_loss", "median_nse", "open_data", "predict", "prepare", "resolve",
    "runs_root", "save_checkpoint", "train", "valid_mask", "write_atomic", "write_predictions",
]
