"""A small hand-written PyTorch loop using repro_mlflow.determinism and repro_mlflow.evidence.

PERTURB_FROM_EPOCH=N (environment, not a parameter, so the config stays the same) nudges one
weight by 1e-6 after epoch N's last step: a stand-in for a kernel that is not deterministic.
"""

import argparse
import os

import mlflow
import torch

from repro_mlflow import determinism, evidence

p = argparse.ArgumentParser()
p.add_argument("--seed", type=int, default=1)
p.add_argument("--threads", type=int, default=0)
p.add_argument("--epochs", type=int, default=3)
args = p.parse_args()

determinism.configure(seed=args.seed, threads=args.threads, framework="torch")

g = torch.Generator().manual_seed(0)
x, xt = torch.randn(512, 8, generator=g), torch.randn(256, 8, generator=g)
y, yt = (x[:, 0] + x[:, 1] * x[:, 2] > 0).long(), (xt[:, 0] + xt[:, 1] * xt[:, 2] > 0).long()
model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
initial = evidence.digest_weights(model)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
perturb = int(os.environ.get("PERTURB_FROM_EPOCH", "0"))

with mlflow.start_run():
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        if perturb and epoch == perturb:
            with torch.no_grad():
                model[0].weight[0, 0] += 1e-6
        evidence.log_epoch(model)
        mlflow.log_metric("loss", loss.item(), step=epoch)
    with torch.no_grad():
        probs = torch.softmax(model(xt), dim=1)
    mlflow.log_metric("test_accuracy", (probs.argmax(1) == yt).double().mean().item())
    evidence.log_evidence(model, predictions=probs, labels=yt, data=[x, y, xt, yt], initial=initial,
                          primary_metric="test_accuracy")
