"""Mechanism checks for PRAG and DyPRAG on 2WikiMultihopQA (issue 15, the fidelity audit's
cheap experiments), printed as one table.

Run after the acceptance runs of ``benchmarks/parametric_2wiki.sh`` with the same
RETBENCH_HOME and settings: it reuses their cached augmentation, PRAG LoRAs and translator
(and trains what is missing).

    RETBENCH_HOME=... .venv/bin/python benchmarks/parametric_checks.py --data-dir ../shared/data \\
        --fit 'dev[300:330]' --eval 'dev[:30]' --augment-args '{"rewrite_tokens": 160}' [--augment-generator ct2]

Checks:
- gradient share of each loss term (LM, mse_weight x MSE, kl_weight x KL) for a fresh
  translator on the first training passages;
- MSE and KL mean over the first and last tenth of the translator's training;
- DyPRAG with its generated LoRA scaled by 0 gives exactly the closed-book outputs;
- cosine of generated ΔW between the first and last layer and between passages, and the norm
  of the generated ΔW over the PRAG ΔW of the same passage;
- mean log p(answer) of the evaluated passages' own QA pairs under the inference prompt
  (closed-book template, prefilled): base model, with the passage's PRAG LoRA, with its
  DyPRAG LoRA.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from retbench.engine.cache import default_home
from retbench.data.datasets.multihop import TwoWikiMultihopQA
from retbench.engine.state import load_split
from retbench_bm25.retriever import BM25
from retbench_parametric.dyprag import DyPragInjector, retrieved_passages
from retbench_parametric.readers import DyPragReader, PragReader
from retbench_readers.ct2_generator import CT2Generator
from retbench_readers.hf_generator import HFGenerator


def delta(a: torch.Tensor, b: torch.Tensor, scaling: float) -> torch.Tensor:
    return scaling * (b.float() @ a.float())


def cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(x.flatten(), y.flatten(), dim=0))


def tenth(values: list[float], last: bool) -> float:
    n = max(1, len(values) // 10)
    return statistics.mean(values[-n:] if last else values[:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--fit", default="dev[300:330]")
    parser.add_argument("--eval", default="dev[:30]")
    parser.add_argument("--augment-args", default="{}", help="JSON, as given to the acceptance runs")
    parser.add_argument("--injector-args", default="{}", help="JSON: other DyPRAG settings of the run checked")
    parser.add_argument("--augment-generator", choices=["reader", "ct2"], default="reader",
                        help="who writes PRAG's QA pairs: the reader's generator, or ct2 as --augment-generator ct2")
    parser.add_argument("--gradient-steps", type=int, default=5)
    parser.add_argument("--passages", type=int, default=12, help="evaluated passages for the ΔW and likelihood rows")
    args = parser.parse_args()

    home = default_home()
    dataset = TwoWikiMultihopQA(data_dir=args.data_dir)
    fit = load_split(dataset, args.fit, workdir=home / "prepared")
    evaluated = load_split(dataset, args.eval, workdir=home / "prepared")
    retriever = BM25()
    retriever.index(fit.corpus, workdir=home / "checks-bm25")
    generator = HFGenerator()
    reader, prag_reader = DyPragReader(), PragReader()  # as in the acceptance runs' records
    reader.set_generator(generator)
    prag_reader.set_generator(generator)
    injector = DyPragInjector(augment_args=json.loads(args.augment_args), **json.loads(args.injector_args))
    if args.augment_generator == "ct2":
        injector.set_augment_generator(CT2Generator())
    inject_dir = home / "inject" / "checks"
    rows: list[tuple[str, str]] = []

    train_passages = retrieved_passages(fit, retriever, 3)
    report = injector.fit(fit, retriever=retriever, reader=reader, workdir=_fresh(home / "checks-fit"),
                          seed=0, inject_dir=inject_dir, k=3)
    curves = report["curves"]
    for term in ("mse", "kl", "lm"):
        rows.append((f"{term} first -> last tenth ({report['steps']} steps)",
                     f"{tenth(curves[term], False):.6g} -> {tenth(curves[term], True):.6g}"))
    rows.append(("translator bytes / PRAG bytes (training passages)",
                 f"{report['bytes']} / {report['prag_bytes']} = {report['bytes'] / max(report['prag_bytes'], 1):.4f}"))

    model, tokenizer = generator.load()
    rows += gradient_shares(injector, train_passages, reader, generator, inject_dir, args.gradient_steps)

    eval_passages = retrieved_passages(evaluated, retriever, 3)[: args.passages]
    store = injector.ensure_loras(eval_passages, reader=prag_reader, inject_dir=inject_dir)
    items = injector.augment(eval_passages, generator=generator, inject_dir=inject_dir)
    prompts = [reader.prompt_text(q, []) for q in list(evaluated.queries.values())[:8]]
    base = generator.generate(prompts, prefix=reader.prefix_)
    lora, _ = injector.generated_lora(eval_passages[:3], generator)
    with generator.injected([type(lora)(lora.factors, 0.0)]):
        zeroed = generator.generate(prompts, prefix=reader.prefix_)
    rows.append(("x0 generated LoRA == closed book outputs", f"{sum(a == b for a, b in zip(base, zeroed))}/{len(base)}"))

    per_layer, per_passage, ratios = [], [], []
    generated = [injector.generated_lora([p], generator)[0] for p in eval_passages]
    names = list(generated[0].factors)
    kinds = {n.rsplit(".", 1)[-1] for n in names}
    for g, passage in zip(generated, eval_passages):
        prag = store.load(passage).weights
        for kind in kinds:
            layers = [n for n in names if n.endswith(kind)]
            per_layer.append(cosine(delta(*g.factors[layers[0]], g.scaling), delta(*g.factors[layers[-1]], g.scaling)))
        norm_g = sum(float(delta(*g.factors[n], g.scaling).norm() ** 2) for n in names) ** 0.5
        norm_p = sum(float(delta(*prag.factors[n], prag.scaling).norm() ** 2) for n in names) ** 0.5
        ratios.append(norm_g / norm_p if norm_p else float("nan"))
    for first, second in zip(generated, generated[1:]):
        per_passage.append(statistics.mean(cosine(delta(*first.factors[n], first.scaling),
                                                  delta(*second.factors[n], second.scaling)) for n in names))
    rows.append(("cosine ΔW first vs last layer (mean over passages, kinds)", f"{statistics.mean(per_layer):.3f}"))
    rows.append(("cosine ΔW between consecutive passages (mean)", f"{statistics.mean(per_passage):.3f}"))
    rows.append(("‖ΔW generated‖ / ‖ΔW PRAG‖ (median)", f"{statistics.median(ratios):.3f}"))

    contexts, answers, owners = [], [], []
    for index, item in enumerate(items):
        for qa in item.qa:
            contexts.append(generator.format(reader.prompt_text(qa["question"], [])) + reader.prefix_)
            answers.append(" " + qa["answer"].strip() + ".")
            owners.append(index)
    base_ll = generator.loglikelihood(contexts, answers)
    prag_ll, dyprag_ll = [], []
    for context, answer, owner in zip(contexts, answers, owners):
        with generator.injected([store.load(eval_passages[owner]).weights]):
            prag_ll.append(generator.loglikelihood([context], [answer])[0])
        with generator.injected([generated[owner]]):
            dyprag_ll.append(generator.loglikelihood([context], [answer])[0])
    rows.append((f"mean log p(answer), {len(contexts)} QA pairs: base / PRAG / DyPRAG",
                 f"{statistics.mean(base_ll):.3f} / {statistics.mean(prag_ll):.3f} / {statistics.mean(dyprag_ll):.3f}"))
    rows.append(("QA pairs where PRAG / DyPRAG raise log p over base",
                 f"{sum(p > b for p, b in zip(prag_ll, base_ll))} / {sum(d > b for d, b in zip(dyprag_ll, base_ll))}"
                 f" of {len(contexts)}"))

    width = max(len(name) for name, _ in rows)
    print(f"| {'check'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


def gradient_shares(injector: DyPragInjector, passages, reader, generator, inject_dir: Path, steps: int
                    ) -> list[tuple[str, str]]:
    """‖∇φ‖ of each weighted loss term for a fresh translator, mean over the first passages."""
    from retbench_parametric.prag import training_texts
    from retbench_parametric.translator import passage_embeddings

    model, tokenizer = generator.load()
    items = injector.augment(passages, generator=generator, inject_dir=inject_dir)
    usable = [i for i, item in enumerate(items) if item.qa][:steps]
    store = injector.ensure_loras([passages[i] for i in usable], reader=reader, inject_dir=inject_dir)
    torch.manual_seed(0)
    translator = injector._translator(model)
    embeddings = passage_embeddings(model, tokenizer, [passages[i].contents(": ") for i in usable],
                                    max_length=injector.max_length)
    weights = {"lm": injector.lm_weight, "mse": injector.mse_weight, "kl": injector.kl_weight}
    norms: dict[str, list[float]] = {k: [] for k in weights}
    for row, index in enumerate(usable):
        texts = training_texts(items[index], reader)[: injector.texts_per_passage]
        for term, weight in weights.items():
            translator.zero_grad(set_to_none=True)
            generated = translator(embeddings[row : row + 1])[0]
            terms = injector.losses(generated, store.load(passages[index]).weights, texts, model, generator)
            (weight * terms[term]).backward()
            norms[term].append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in translator.parameters()
                                                    if p.grad is not None))))
    total = sum(statistics.mean(v) for v in norms.values()) or 1.0
    return [(f"gradient share at start: {term} (x{weights[term]:g})",
             f"{statistics.mean(v) / total:.3f} (‖∇‖ {statistics.mean(v):.3g})") for term, v in norms.items()]


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    main()
