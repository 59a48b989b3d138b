"""
====================================================
A scikit-learn pipeline on torch tensors, end to end
====================================================

With ``sklearn.set_config(array_api_dispatch=True)``, scikit-learn estimators that
support the array API standard take torch tensors and answer with torch tensors, on
the tensors' device. skebm's estimators do too, so a
``MinMaxScaler ->`` :class:`~skebm.RBM` ``-> LogisticRegression`` pipeline runs on
tensors from the first step to the last. Here the tensors live on the CPU; the last cell says what
changes on a GPU.

Array API dispatch needs SciPy's own array API support, which SciPy reads from the
environment variable ``SCIPY_ARRAY_API=1`` when it is first imported: set it before
anything imports SciPy (in the shell, or at the very top of the script as here).
"""

# %%
import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402, TID251 (an example: user code)
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402

from skebm import RBM  # noqa: E402

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)


def pipeline():
    return make_pipeline(
        MinMaxScaler(clip=True),  # test pixels beyond the training range stay in [0, 1]
        RBM(n_components=64, n_iter=10, learning_rate=0.05, random_state=0),
        LogisticRegression(max_iter=1000),
    )


# %%
# **NumPy in, NumPy out.** Without dispatch nothing changes: the pipeline takes and
# returns NumPy arrays, and the RBM computes where ``backend`` and ``device`` say.
reference = pipeline().fit(X_train, y_train)
print(f"NumPy pipeline: test accuracy {reference.score(X_test, y_test):.3f}")

# %%
# **Tensors in, tensors out.** Under dispatch the same pipeline, fitted on tensors,
# keeps them: the scaler computes in torch, the RBM runs its torch backend on the
# tensors' device (whatever its ``backend`` parameter, which applies to NumPy input),
# and the classifier answers with tensors. Fitted attributes are tensors too.
device = "cpu"
Xt_train = torch.asarray(X_train, device=device)
yt_train = torch.asarray(y_train, device=device)
Xt_test = torch.asarray(X_test, device=device)
yt_test = torch.asarray(y_test, device=device)

with sklearn.config_context(array_api_dispatch=True):
    model = pipeline().fit(Xt_train, yt_train)
    scaled = model[0].transform(Xt_test)
    codes = model[1].transform(scaled)
    proba = model.predict_proba(Xt_test)
    accuracy = model.score(Xt_test, yt_test)
    rbm = model[1]
print(f"torch pipeline: test accuracy {accuracy:.3f}")
print(f"features: {type(codes).__name__} on {codes.device}, shape {tuple(codes.shape)}")
print(f"RBM weights: {type(rbm.components_).__name__} on {rbm.components_.device}")

# %%
# The RBM's torch backend draws other random numbers than its NumPy backend, so the
# two pipelines differ by sampling noise only. Here are the weights of some hidden
# units learnt from the tensors.
fig, axes = plt.subplots(2, 8, figsize=(8, 2.4))
for ax, w in zip(axes.ravel(), rbm.components_[:16].numpy(), strict=True):
    ax.imshow(w.reshape(8, 8), cmap="gray")
    ax.set_axis_off()
fig.suptitle("RBM features learnt from torch tensors")
fig.tight_layout()

# %%
# **skebm's pickles hold NumPy only.** Pickling the RBM converts its arrays to
# NumPy, so the file loads where torch is not installed and, without dispatch,
# answers in NumPy. (scikit-learn's own estimators pickle their tensors as they
# are.)
import pickle  # noqa: E402

loaded = pickle.loads(pickle.dumps(rbm))
print(type(loaded.components_).__name__)
print(np.allclose(loaded.transform(scaled.numpy()), codes.numpy()))

# %%
# **On a GPU.** Create the tensors with ``device="cuda"`` (or ``"mps"``) instead:
# the scaler, the RBM's Gibbs sampling and matrix products, and the classifier then
# run on the GPU, the fitted attributes live there and every output comes back there.
# In this release, skebm's estimators validate their inputs on the host, so each call
# copies the input to host memory and back to the device once; the training and
# inference themselves run on the device. Pickles still hold NumPy arrays, so a model
# trained on a GPU loads anywhere.
