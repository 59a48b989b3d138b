"""Benchmark skebm.VAETransformer against its peers on the digits.

Four sections, each printed as it finishes and written to
``benchmarks/results/vae.md`` and ``vae.json``:

1. Feature extractor: VAETransformer(n_components=8) -> LogisticRegression against
   PCA(8) -> LogisticRegression (test accuracy, several VAE seeds), and the
   reconstruction error of both at equal dimension.
2. Density: ``score_samples`` separates test digits from uniform noise and from
   inverted digits (1 - x), AUROC; the peer is PCA's probabilistic-PCA likelihood.
3. Generator: samples read by an independent classifier (a calibrated SVC trained on
   real digits): mean top probability and classes present; a conditional VAE's samples
   read as the requested class. The peer is a GaussianMixture of 10 components.
4. Overhead: the estimator's fit time against a bare torch loop of the same network,
   epochs and batch size, interleaved repeats, ratio.
5. The cost of a default fit: ``VAETransformer()`` against ``PCA(2)`` and the bare
   torch loop run for as many epochs as the default fit took.

Data: ``load_digits`` scaled to [0, 1] (X / 16), cast to float32, one fixed
stratified split (test_size=0.25, random_state=0). Run
``python benchmarks/bench_vae.py`` (2-3 minutes on 2 cores) or ``--quick`` for a
smoke run that writes files only with ``--out``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    Report,
    Table,
    finish,
    interleaved_timings,
    machine_info,
    mean_std,
    run_sections,
)
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC
from torch import nn

from skebm._vae import VAETransformer

FULL = {
    "feature_seeds": (0, 1, 2),
    "overhead_epochs": 30,
    "overhead_repeats": 7,
    "n_generated": 1000,
    "max_iter": None,  # the default
}
QUICK = {
    "feature_seeds": (0,),
    "overhead_epochs": 3,
    "overhead_repeats": 1,
    "n_generated": 200,
    "max_iter": 5,
}

#: a deeper network, shown next to the defaults where it changes the figure
DEEPER = {"hidden_layer_sizes": (256, 128)}


def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _vae(cfg, **kw):
    if cfg["max_iter"] is not None:
        kw.setdefault("max_iter", cfg["max_iter"])
    return VAETransformer(**kw)


def _logreg():
    return LogisticRegression(max_iter=5000)


# -- section 1: features -----------------------------------------------------------------


def section_features(cfg, data) -> Table:
    Xtr, Xte, ytr, yte = data
    table = Table(
        "1. Feature extractor, 8 dimensions -> LogisticRegression (digits test split)",
        [
            ("model", "features", ""),
            ("acc_mean", "test accuracy, mean", ".4f"),
            ("acc_std", "std", ".4f"),
            ("ratio", "accuracy / PCA's", ".3f"),
            ("mse", "reconstruction MSE, mean", ".4f"),
            ("mse_ratio", "MSE / PCA's", ".3f"),
            ("fit_s", "fit time, mean (s)", ".1f"),
        ],
    )
    tic = time.perf_counter()
    pca = PCA(8).fit(Xtr)
    pca_fit = time.perf_counter() - tic
    acc_pca = _logreg().fit(pca.transform(Xtr), ytr).score(pca.transform(Xte), yte)
    mse_pca = float(np.mean((pca.inverse_transform(pca.transform(Xte)) - Xte) ** 2))
    table.add(
        model="PCA(8)",
        acc_mean=acc_pca,
        acc_std=0.0,
        ratio=1.0,
        mse=mse_pca,
        mse_ratio=1.0,
        fit_s=pca_fit,
    )
    results = {}
    for name, kw in (("defaults", {}), ("deeper", DEEPER)):
        accs, mses, times = [], [], []
        for seed in cfg["feature_seeds"]:
            vae = _vae(cfg, n_components=8, random_state=seed, **kw)
            tic = time.perf_counter()
            vae.fit(Xtr)
            times.append(time.perf_counter() - tic)
            Ztr, Zte = vae.transform(Xtr), vae.transform(Xte)
            accs.append(_logreg().fit(Ztr, ytr).score(Zte, yte))
            mses.append(float(np.mean((vae.inverse_transform(Zte) - Xte) ** 2)))
        acc, acc_sd = mean_std(accs)
        mse = float(np.mean(mses))
        results[name] = acc
        table.add(
            model=f"VAETransformer(8), {name}"
            + (f" {kw}" if kw else "")
            + f", {len(accs)} seeds",
            acc_mean=acc,
            acc_std=acc_sd,
            ratio=acc / acc_pca,
            mse=mse,
            mse_ratio=mse / mse_pca,
            fit_s=float(np.mean(times)),
            accuracies=accs,
        )
    table.notes += [
        "Both pipelines: the 8 features straight into LogisticRegression(max_iter=5000)",
        "Reconstruction: PCA's inverse_transform(transform(X)) and the VAE's "
        "decoder mean at the posterior mean, inverse_transform(transform(X)).",
        "VAE seeds: random_state of each fit; PCA is deterministic.",
    ]
    table.target(
        "VAE(8) + LogReg accuracy >= PCA(8) + LogReg (defaults)",
        results["defaults"] >= acc_pca,
        f"{results['defaults']:.4f} vs {acc_pca:.4f}, "
        f"ratio {results['defaults'] / acc_pca:.3f}",
    )
    return table


# -- section 2: density ------------------------------------------------------------------


def _auroc(inlier, outlier):
    labels = np.r_[np.ones(len(inlier)), np.zeros(len(outlier))]
    return roc_auc_score(labels, np.r_[inlier, outlier])


def section_density(cfg, data) -> Table:
    Xtr, Xte, _, _ = data
    noise = np.random.default_rng(0).random(Xte.shape).astype(np.float32)
    inverted = 1.0 - Xte
    table = Table(
        "2. Density: score_samples of test digits vs uniform noise and inverted digits",
        [
            ("model", "model", ""),
            ("ll", "test log-likelihood, mean", ".2f"),
            ("auc_noise", "AUROC vs noise", ".4f"),
            ("auc_inverted", "AUROC vs inverted", ".4f"),
        ],
    )
    pca = PCA(8).fit(Xtr)
    table.add(
        model="PCA(8) (probabilistic PCA)",
        ll=float(pca.score(Xte)),
        auc_noise=_auroc(pca.score_samples(Xte), pca.score_samples(noise)),
        auc_inverted=_auroc(pca.score_samples(Xte), pca.score_samples(inverted)),
    )
    aucs = {}
    for name, kw in (("defaults", {}), ("n_components=8", {"n_components": 8})):
        vae = _vae(cfg, random_state=0, **kw).fit(Xtr)
        s = vae.score_samples(Xte)
        aucs[name] = (
            _auroc(s, vae.score_samples(noise)),
            _auroc(s, vae.score_samples(inverted)),
        )
        table.add(
            model=f"VAETransformer, {name}",
            ll=float(s.mean()),
            auc_noise=aucs[name][0],
            auc_inverted=aucs[name][1],
        )
    table.notes += [
        "VAE scores: the IWAE bound with k=100 importance samples (the default); "
        "Bernoulli likelihood (likelihood='auto' on data in [0, 1]), so its "
        "log-likelihood is a cross-entropy and not comparable with PCA's Gaussian "
        "log-density.",
        "Noise: uniform on [0, 1]^64; inverted digits: 1 - x of the test rows.",
    ]
    a = aucs["defaults"]
    table.target(
        "AUROC digits vs noise >= 0.95 (defaults)",
        a[0] >= 0.95,
        f"{a[0]:.4f}; PCA {table.rows[0]['auc_noise']:.4f}",
    )
    table.target(
        "AUROC digits vs inverted digits >= 0.95 (defaults)",
        a[1] >= 0.95,
        f"{a[1]:.4f}; PCA {table.rows[0]['auc_inverted']:.4f}",
    )
    return table


# -- section 3: generator ----------------------------------------------------------------


def section_generator(cfg, data) -> Table:
    Xtr, Xte, ytr, yte = data
    n = cfg["n_generated"]
    reader = CalibratedClassifierCV(SVC(), ensemble=False).fit(Xtr, ytr)
    table = Table(
        f"3. Generator: {n} samples read by an SVC trained on real digits",
        [
            ("model", "samples from", ""),
            ("top_p", "mean top probability", ".3f"),
            ("n_classes", "classes present", ""),
            ("requested", "read as requested class", ".3f"),
        ],
    )
    P = reader.predict_proba(Xte)
    table.add(
        model="real test digits (reference)",
        top_p=float(P.max(1).mean()),
        n_classes=len(np.unique(P.argmax(1))),
    )
    gm = GaussianMixture(10, covariance_type="full", random_state=0).fit(Xtr)
    P = reader.predict_proba(np.clip(gm.sample(n)[0], 0, 1))
    table.add(
        model="GaussianMixture(10, full), samples clipped to [0, 1]",
        top_p=float(P.max(1).mean()),
        n_classes=len(np.unique(P.argmax(1))),
    )
    read = {}
    for name, kw in (
        ("defaults", {}),
        ("n_components=8", {"n_components": 8}),
        ("n_components=8, deeper", {"n_components": 8, **DEEPER}),
    ):
        vae = _vae(cfg, random_state=0, **kw).fit(Xtr)
        P = reader.predict_proba(vae.sample(n, return_mean=True, random_state=0))
        read[name] = (float(P.max(1).mean()), len(np.unique(P.argmax(1))))
        table.add(
            model=f"VAETransformer, {name}",
            top_p=read[name][0],
            n_classes=read[name][1],
        )
    cvae = _vae(cfg, conditional=True, random_state=0).fit(Xtr, ytr)
    wanted = np.arange(n) % 10
    P = reader.predict_proba(cvae.sample(n, y=wanted, return_mean=True, random_state=0))
    hit = float(np.mean(P.argmax(1) == wanted))
    table.add(
        model="VAETransformer(conditional=True), defaults, y = 0..9 in turn",
        top_p=float(P.max(1).mean()),
        n_classes=len(np.unique(P.argmax(1))),
        requested=hit,
    )
    table.notes += [
        f"Reader: CalibratedClassifierCV(SVC(), ensemble=False) on the training digits, test accuracy "
        f"{reader.score(Xte, yte):.4f}.",
        "VAE samples: the decoder mean E[x | z] at z ~ N(0, I) "
        "(sample(return_mean=True)): Bernoulli draws would be binary images.",
        "The target is set on the 8-dimensional model of section 1: a 2-D latent "
        "space (the default n_components=2) has too little prior mass for some "
        "classes to show up in every draw of samples.",
    ]
    d = read["n_components=8"]
    table.target(
        "samples read as digits: mean top probability >= 0.7 and 10 classes "
        "(n_components=8, other parameters default)",
        d[0] >= 0.7 and d[1] == 10,
        f"{d[0]:.3f}, {d[1]} classes; GaussianMixture {table.rows[1]['top_p']:.3f}; "
        f"n_components=2: {read['defaults'][0]:.3f}, {read['defaults'][1]} classes",
    )
    table.target(
        "conditional samples read as the requested class >= 90% (defaults)",
        hit >= 0.9,
        f"{hit:.3f}",
    )
    return table


# -- section 4: overhead -----------------------------------------------------------------


def _bare_fit(X, epochs, batch_size, hidden, n_components, seed):
    """The same VAE trained by a minimal torch loop: no validation, no safeguards."""
    torch.manual_seed(seed)
    d_in = X.shape[1]
    enc = nn.Sequential(
        nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, 2 * n_components)
    )
    dec = nn.Sequential(
        nn.Linear(n_components, hidden), nn.ReLU(), nn.Linear(hidden, d_in)
    )
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    Xt = torch.as_tensor(X)
    for _ in range(epochs):
        perm = torch.randperm(len(Xt))
        for start in range(0, len(Xt), batch_size):
            xb = Xt[perm[start : start + batch_size]]
            mu, logvar = enc(xb).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            rec = nn.functional.binary_cross_entropy_with_logits(
                dec(z), xb, reduction="none"
            ).sum(1)
            kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
            loss = (rec + kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return enc, dec


def section_overhead(cfg, data) -> Table:
    Xtr = data[0]
    epochs, repeats = cfg["overhead_epochs"], cfg["overhead_repeats"]
    batch = min(200, len(Xtr))
    kw = dict(
        n_components=2,
        hidden_layer_sizes=(256,),
        batch_size=batch,
        max_iter=epochs,
        n_iter_no_change=epochs + 1,  # run every epoch, as the bare loop does
        random_state=0,
        device="cpu",
    )
    table = Table(
        f"4. Overhead: fit time, {len(Xtr)} x 64 float32, n_components=2, "
        f"hidden (256,), batch {batch}, {epochs} epochs",
        [
            ("what", "training", ""),
            ("best", "best (s)", ".3f"),
            ("worst", "worst (s)", ".3f"),
            ("runs", "runs", ""),
            ("ratio", "time / bare loop's (best)", ".2f"),
        ],
    )
    candidates = {
        "bare torch loop": lambda: _bare_fit(Xtr, epochs, batch, 256, 2, 0),
        "VAETransformer.fit": lambda: VAETransformer(**kw).fit(Xtr),
    }
    for fn in candidates.values():  # warm up
        fn()
    times = interleaved_timings(candidates, repeats=repeats)
    bare = min(times["bare torch loop"])
    for name, ts in times.items():
        table.add(
            what=name, best=min(ts), worst=max(ts), runs=len(ts), ratio=min(ts) / bare
        )
    ratio = min(times["VAETransformer.fit"]) / bare
    table.notes += [
        "Same network (64-256-4 encoder, 2-256-64 decoder, ReLU), Adam(lr=1e-3), "
        "one reparameterised draw per row, analytic KL, Bernoulli likelihood, "
        "shuffled batches. The estimator's time includes input validation, "
        "the per-epoch rollback snapshot and finiteness checks.",
        f"Candidates run round-robin, {repeats} rounds; the ratio divides best times.",
    ]
    table.target(
        "fit time <= 1.2x a bare torch loop",
        ratio <= 1.2,
        f"{ratio:.2f}x ({min(times['VAETransformer.fit']):.3f} s vs {bare:.3f} s)",
    )
    return table


# -- section 5: the cost of a default fit ------------------------------------------------


def section_default_cost(cfg, data) -> Table:
    """VAETransformer() at its defaults against PCA(2) and a bare torch loop run for
    as many epochs as the default fit took."""
    Xtr = data[0]
    repeats = cfg["overhead_repeats"]
    kw = {} if cfg["max_iter"] is None else {"max_iter": cfg["max_iter"]}
    epochs = VAETransformer(random_state=0, **kw).fit(Xtr).n_iter_
    candidates = {
        "PCA(n_components=2).fit": lambda: PCA(n_components=2).fit(Xtr),
        f"bare torch loop, {epochs} epochs": lambda: _bare_fit(
            Xtr, epochs, min(200, len(Xtr)), 256, 2, 0
        ),
        "VAETransformer().fit (defaults)": lambda: VAETransformer(
            random_state=0, **kw
        ).fit(Xtr),
    }
    times = interleaved_timings(candidates, repeats=repeats)
    vae = min(times["VAETransformer().fit (defaults)"])
    table = Table(
        f"5. A default fit: {len(Xtr)} x 64 float32, torch at "
        f"{torch.get_num_threads()} thread(s) under skebm's thread policy",
        [
            ("what", "fit", ""),
            ("best", "best (s)", ".3f"),
            ("runs", "runs", ""),
            ("ratio", "VAE / this", ".1f"),
        ],
    )
    for name, ts in times.items():
        table.add(what=name, best=min(ts), runs=len(ts), ratio=vae / min(ts))
    table.notes.append(
        f"The default fit stopped after {epochs} epochs (training-loss plateau); "
        "the bare loop runs as many. PCA(2): the linear peer at the VAE's default "
        "dimension."
    )
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, no files")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--sections", default="1,2,3,4,5")
    parser.add_argument(
        "--threads",
        default="1",
        help="torch threads: a number, or 'default' for the machine's setting",
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    sections = {s.strip() for s in args.sections.split(",")}
    out = args.out if args.out is not None else (None if args.quick else RESULTS_DIR)
    # one thread by default: the networks are small (batches of 200 x 256), where
    # torch's thread pool costs more than it gains on a shared 2-core machine
    if args.threads != "default":
        torch.set_num_threads(int(args.threads))
    warnings.simplefilter("ignore", ConvergenceWarning)

    tic = time.perf_counter()
    data = digits()
    report = Report(
        name="vae",
        title="skebm.VAETransformer vs PCA, GaussianMixture and a bare torch loop"
        + (" (QUICK smoke run: reduced settings)" if args.quick else ""),
        machine=machine_info(),
        settings={"mode": "quick" if args.quick else "full", **cfg},
        intro=[
            "Digits: load_digits / 16 as float32, stratified split test_size=0.25, "
            "random_state=0 (1347 train / 450 test rows). Every peer is measured "
            "in the same run. torch runs with one thread (torch.set_num_threads(1)) "
            "unless --threads says otherwise; see the machine table.",
            "",
            "Defaults: hidden_layer_sizes=(256,), relu, max_iter=200, "
            "batch_size='auto' (200), learning_rate_init=1e-3, tol=1e-4, "
            "n_iter_no_change=10; fit stops on the training-loss plateau, "
            "typically after 80 to 150 epochs on these data.",
        ],
    )
    print(report.to_markdown())
    steps = [
        ("1", section_features),
        ("2", section_density),
        ("3", section_generator),
        ("4", section_overhead),
        ("5", section_default_cost),
    ]
    run_sections(
        report, [(key, partial(run, cfg, data)) for key, run in steps], sections
    )
    finish(report, tic, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
