"""mmkd's registry scope, ``mmkd``: children of MMDetection's registries.

MMEngine gives every top-level component of a config inherited as
``mmkd::...`` the scope ``_scope_='mmkd'`` (datasets, samplers, evaluators,
hooks, loops...). Building it looks for the ``mmkd`` registries (importing
this module) and searches up from there; without them MMEngine would fall
back to its own root registries, where MMDetection's types (``CocoDataset``,
``CocoMetric``...) are missing. Each registry here is empty and has
MMDetection's as parent, so a name resolves exactly as in the ``mmdet``
scope; mmkd's own modules stay registered where they are (MMRazor's MODELS,
MMEngine's HOOKS / OPTIM_WRAPPERS), which the search reaches too.
"""
from mmdet import registry as mmdet_registry
from mmengine.registry import Registry

NAMES = ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
         'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
         'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
         'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS',
         'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS',
         'LOG_PROCESSORS')


def _child(parent: Registry) -> Registry:
    # MMEngine imports a registry's `locations` only for the registry it
    # starts from, not for the parents it searches: the same modules as
    # MMDetection's, so that its types are registered before the search.
    return Registry(parent.name, parent=parent, scope='mmkd',
                    locations=list(parent._locations))


_registries = {name: _child(getattr(mmdet_registry, name)) for name in NAMES}
globals().update(_registries)

__all__ = list(NAMES)
