"""The controller runtime: informers and their caches, work queues, level-triggered controllers,
events, status conditions, metrics and leader election — everything a reconciler needs except
its own logic.
"""

from netplane.controllers.runtime.cache import Cache, object_key, split_key
from netplane.controllers.runtime.conditions import find_condition, is_true, set_condition
from netplane.controllers.runtime.controller import Controller, Result
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.leader import LeaderElector, LeaseTiming
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.runtime.metrics import ControllerMetrics
from netplane.controllers.runtime.workqueue import WorkQueue

__all__ = [
    "Cache", "Controller", "ControllerMetrics", "EventRecorder", "Informer", "LeaderElector", "LeaseTiming",
    "Manager", "Result", "WorkQueue", "find_condition", "is_true", "object_key", "set_condition", "split_key",
]
