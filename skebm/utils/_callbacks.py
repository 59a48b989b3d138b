"""scikit-learn's callbacks (``est.set_callbacks(ProgressBar())``) in the training loops.

scikit-learn >= 1.9 ships an experimental callbacks API (:mod:`sklearn.callback`).
Where it imports, the two training loops (:class:`skebm.base.IterativeFitMixin` and
:class:`skebm._neural.NeuralFitMixin`) derive from its ``CallbackSupportMixin`` and
report a task tree of one root task per ``fit`` / ``partial_fit`` call with one
sub-task per epoch; an ``on_fit_task_end`` hook that returns True stops the training
after that epoch. Where it does not import, :class:`CallbackSupport` is an empty class
and :class:`EpochTasks` does nothing, so older scikit-learn versions keep working.
"""

try:
    from sklearn.callback import CallbackSupportMixin as CallbackSupport
except ImportError:  # scikit-learn < 1.9: no callbacks API

    class CallbackSupport:
        """Stand-in for ``sklearn.callback.CallbackSupportMixin``: no callbacks."""


class EpochTasks:
    """The callback task tree of one fit: a root task with one sub-task per epoch.

    A retried epoch (rollback after divergence) stays one task: its ``begin`` hook
    runs at the first attempt and its ``end`` hook once the epoch completes.

    Parameters
    ----------
    estimator : estimator instance
        The estimator being fitted; its root callback context is created here.
    n_epochs : int
        Epochs this call runs at most (``max_subtasks`` of the root task).
    X, y : array-like or None
        Training data handed to the hooks.
    """

    def __init__(self, estimator, n_epochs, X, y=None):
        self._estimator, self._X, self._y = estimator, X, y
        self._epoch = None
        self._root = None
        if hasattr(estimator, "_init_callback_context"):
            self._root = estimator._init_callback_context(max_subtasks=n_epochs)
            self._root.call_on_fit_task_begin(estimator=estimator, X=X, y=y)

    def _call(self, ctx, hook, attributes):
        return getattr(ctx, hook)(
            estimator=self._estimator,
            X=self._X,
            y=self._y,
            reconstruction_attributes=attributes,
        )

    def begin_epoch(self, attributes=None):
        """Open the next epoch's task, unless a retried epoch's task is still open.

        ``attributes`` (a dict or a callable returning one, evaluated only when a
        callback asks for ``fitted_estimator``) are the fitted attributes that make a
        copy of the estimator usable as of now.
        """
        if self._root is not None and self._epoch is None:
            self._epoch = self._root.subcontext(task_name="epoch")
            self._call(self._epoch, "call_on_fit_task_begin", attributes)

    def end_epoch(self, attributes=None):
        """Close the epoch's task; True when a callback asks to stop training."""
        if self._epoch is None:
            return False
        epoch, self._epoch = self._epoch, None
        return bool(self._call(epoch, "call_on_fit_task_end", attributes))

    def abort_epoch(self):
        """Close an epoch that did not complete (KeyboardInterrupt) as an empty task."""
        if self._epoch is not None:
            epoch, self._epoch = self._epoch, None
            epoch.call_on_fit_task_end(estimator=self._estimator)

    def end_fit(self):
        """Close the root task; the estimator itself is the fitted model."""
        if self._root is not None:
            self._call(self._root, "call_on_fit_task_end", {})
