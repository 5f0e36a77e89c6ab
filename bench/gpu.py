"""GPU training benchmark: the attention-fusion model with pretrained-size encoders.

An image encoder (timm ViT-B/16 by default) and a text encoder (a BERT-base-sized
`transformers` model), both randomly initialised offline and fully trained, go through
Plait's own registries (encoders `timm` and `hf_text`, fusion `attention`, head
`classification`) into a `MultimodalModel`, as build.py assembles one. The encoders
load weights only from local files, so random weights are first written to a temporary
folder. Synthetic batches (224×224 images, 64 token ids) are made once on the device.

Training runs through Plait's Lightning system (`MultimodalSystem`, the `lightning`
loop) when `plait.system` imports; where it does not (the H200 image has no pydantic),
a plain loop with `torch.autocast` does the same steps (loss, backward, clipping at 1.0,
AdamW). After `--warmup` steps, `--steps` steps are timed. Reported: samples/s, step
time, peak GPU memory, GPU utilisation sampled during the timed steps (NVML, else
`nvidia-smi`), and MFU = FLOPs per step (forward + backward, counted by
`torch.utils.flop_counter.FlopCounterMode` on one eager step) × steps/s ÷ peak.

    python bench/gpu.py [--batch-size 128] [--steps 30] [--compile]   # on a GPU
    .venv/bin/python bench/gpu.py --smoke                               # CPU, tiny sizes

Writes the results as JSON to $OUT/<--json> when OUT is set.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.machinery
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # runs without `pip install -e .`

PEAK_TFLOPS = 790.0  # bf16 matrix products measured on this workplace's H200 (KINDS.md: 769-798)
SIZES: dict[str, dict[str, Any]] = {
    "full": {  # ViT-B/16 (86M) + BERT-base (110M): the usual pretrained sizes
        "image_model": "vit_base_patch16_224",
        "text": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
        "text_extra": {"intermediate_size": 3072, "vocab_size": 30522},
        "out_dim": 256,
        "fusion": {"dim": 512, "depth": 2, "heads": 8},
    },
    "smoke": {  # proves the code path on a CPU in seconds
        "image_model": "vit_tiny_patch16_224",
        "text": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
        "text_extra": {"intermediate_size": 128, "vocab_size": 1000},
        "out_dim": 32,
        "fusion": {"dim": 32, "depth": 1, "heads": 4},
    },
}
CLASSES, TEXT_LEN, IMAGE_SIZE = 10, 64, 224


def stub_missing_audio_libs() -> list[str]:
    """plait.fusion imports plait.data, whose audio processor imports librosa, soundfile and
    soxr; nothing here touches audio, so a missing one (the H200 image has none) is replaced
    by an empty module. transformers is imported first: it probes librosa on import."""
    import transformers  # noqa: F401

    stubbed = []
    for name in ("librosa", "soundfile", "soxr"):
        try:
            importlib.import_module(name)
        except (ImportError, OSError):
            module = types.ModuleType(name)
            module.__spec__ = importlib.machinery.ModuleSpec(name, None)
            sys.modules[name] = module
            stubbed.append(name)
    return stubbed


def build(size: dict[str, Any], image_model: str, folder: Path) -> torch.nn.Module:
    """MultimodalModel(image: timm, text: hf_text → attention → classification), random weights."""
    import timm
    import transformers
    from safetensors.torch import save_file

    from plait.encoders import ENCODERS
    from plait.fusion import FUSIONS
    from plait.heads import HEADS
    from plait.model import MultimodalModel

    image = timm.create_model(image_model, pretrained=False, num_classes=0)
    save_file({k: v.contiguous() for k, v in image.state_dict().items()}, folder / "image.safetensors")
    text = transformers.BertModel(transformers.BertConfig(**size["text"], **size["text_extra"]))
    text.save_pretrained(folder / "text")
    del image, text
    trained = {"finetune": "full", "cache": False, "out_dim": size["out_dim"]}
    image_params = {"model": image_model, "path": str(folder / "image.safetensors"), **trained}
    encoders = {
        "image": ENCODERS.build("timm", image_params),
        "text": ENCODERS.build("hf_text", {"path": str(folder / "text"), **trained}),
    }
    in_dims = {key: enc.out_dim for key, enc in encoders.items()}
    fusion = FUSIONS.build("attention", size["fusion"], in_dims=in_dims)
    heads = {"label": HEADS.build("classification", {}, in_dim=fusion.out_dim, num_classes=CLASSES)}
    return MultimodalModel(encoders, {"image": "image", "text": "text"}, fusion, heads)  # type: ignore[arg-type]


def synthetic_batch(batch_size: int, vocab: int, device: torch.device):  # -> plait Batch
    from plait.data.collate import Batch

    g = torch.Generator(device=device).manual_seed(0)
    images = torch.randn(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE, device=device, generator=g)
    ids = torch.randint(1, vocab, (batch_size, TEXT_LEN), device=device, generator=g)  # no padding (id 0)
    present = torch.ones(batch_size, dtype=torch.bool, device=device)
    labels = torch.randint(0, CLASSES, (batch_size,), device=device, generator=g)
    return Batch(
        {"image": images, "text": ids}, {"image": present, "text": present.clone()}, {"label": labels}
    )


def step_loss(model, batch) -> torch.Tensor:
    """The training loss exactly as MultimodalSystem computes it (fuse, then each head)."""
    fused = model.fuse(batch.inputs, batch.present)
    return sum(
        head.forward_loss(model.head_input(head, fused), batch.targets[t])[1]
        for t, head in model.heads.items()
    )


def autocast(precision: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    if precision == "bf16-mixed":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def count_step_flops(model, batch, precision: str, device: torch.device) -> int:
    """FLOPs of one training step (forward + backward; the optimiser's few are left out).
    FlopCounterMode knows the CUDA attention kernels (flash, efficient, cuDNN) but not the
    CPU one, so on a CPU attention is counted through the math backend's matmuls."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    backends = sdpa_kernel(SDPBackend.MATH) if device.type == "cpu" else contextlib.nullcontext()
    with counter, backends:
        with autocast(precision, device)():
            loss = step_loss(model, batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


class GpuSampler:
    """GPU utilisation (% of time a kernel ran) and memory used, sampled in the background."""

    def __init__(self, index: int, interval_s: float = 0.1) -> None:
        self.index, self.interval = index, interval_s
        self.util: list[float] = []
        self.mem_mib: list[float] = []
        self.source = "none"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            self.source = "pynvml"
            self._thread = threading.Thread(target=self._poll_nvml, args=(pynvml, handle), daemon=True)
        except Exception:  # no pynvml, or no NVIDIA driver: fall back to nvidia-smi
            if shutil.which("nvidia-smi") is None:
                return
            query = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
            cmd = ["nvidia-smi", *query, "-lms", "200", "-i", str(self.index)]
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.source = "nvidia-smi"
            self._thread = threading.Thread(target=self._read_smi, daemon=True)
        self._thread.start()

    def _poll_nvml(self, pynvml: Any, handle: Any) -> None:
        while not self._stop.wait(self.interval):
            self.util.append(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            self.mem_mib.append(pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20)

    def _read_smi(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and all(p.replace(".", "").isdigit() for p in parts):
                self.util.append(float(parts[0]))
                self.mem_mib.append(float(parts[1]))

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=2)
        u = self.util
        return {
            "source": self.source,
            "samples": len(u),
            "util_mean_pct": sum(u) / len(u) if u else None,
            "util_min_pct": min(u) if u else None,
            "util_max_pct": max(u) if u else None,
            "memory_used_max_mib": max(self.mem_mib) if self.mem_mib else None,
        }


class Window:
    """Wall time of the timed steps (device synchronised at both ends), GPU sampled meanwhile."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sampler = GpuSampler(device.index or 0) if device.type == "cuda" else None
        self.begin = time.perf_counter()
        self.t0 = self.t1 = 0.0
        self.gpu: dict[str, Any] = {"source": "none (no GPU)"}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self.sync()
        if self.sampler is not None:
            self.sampler.start()
        self.t0 = time.perf_counter()

    def stop(self) -> None:
        self.sync()
        self.t1 = time.perf_counter()
        if self.sampler is not None:
            self.gpu = self.sampler.stop()


def train_lightning(model, batch, args, window: Window) -> None:
    import lightning as L

    from plait.config import TrainerConfig
    from plait.system import MultimodalSystem

    class Repeat:  # the same on-device batch, warmup + steps times
        def __iter__(self):
            return (batch for _ in range(len(self)))

        def __len__(self) -> int:
            return args.warmup + args.steps

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, module, b, batch_idx: int) -> None:
            if batch_idx == args.warmup:
                window.start()

        def on_train_batch_end(self, trainer, module, outputs, b, batch_idx: int) -> None:
            if batch_idx == args.warmup + args.steps - 1:
                window.stop()

    cfg = TrainerConfig(scheduler="constant", learning_rate=1e-4, precision=args.precision)
    system = MultimodalSystem(model, {"label": "category"}, {"label": CLASSES}, {"label": 1.0}, cfg)
    trainer = L.Trainer(
        accelerator="gpu" if window.device.type == "cuda" else "cpu",
        devices=1,
        precision=args.precision,
        max_epochs=1,
        gradient_clip_val=cfg.gradient_clip,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[Timer()],
    )
    trainer.fit(system, Repeat())


def train_plain(model, batch, args, window: Window) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    cast = autocast(args.precision, window.device)
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            window.start()
        with cast():
            loss = step_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    window.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed steps first (compilation, autotuning)"
    )
    parser.add_argument("--precision", default="bf16-mixed", choices=["bf16-mixed", "32-true"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoders and the fusion")
    parser.add_argument("--loop", default="auto", choices=["auto", "lightning", "plain"])
    parser.add_argument("--image-model", default=None, help="timm architecture (default: by size)")
    parser.add_argument("--peak-tflops", type=float, default=PEAK_TFLOPS, help="the MFU denominator")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, a few steps")
    parser.add_argument("--json", default="gpu.json", help="file name under $OUT")
    args = parser.parse_args()
    if args.smoke:
        args.batch_size, args.steps, args.warmup = (
            min(args.batch_size, 4),
            min(args.steps, 3),
            min(args.warmup, 1),
        )
    warnings.filterwarnings("ignore")
    torch.set_float32_matmul_precision("high")
    size = SIZES["smoke" if args.smoke else "full"]
    image_model = args.image_model or size["image_model"]
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    stubbed = stub_missing_audio_libs()
    loop = args.loop
    if loop == "auto":
        try:
            importlib.import_module("plait.system")
            loop = "lightning"
        except ImportError as err:
            print(f"plait.system does not import here ({err}); using the plain loop")
            loop = "plain"

    torch.manual_seed(0)
    folder = Path(tempfile.mkdtemp(prefix="plait-gpu-bench-"))
    try:
        model = build(size, image_model, folder).to(device).train()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    params = sum(p.numel() for p in model.parameters())
    batch = synthetic_batch(args.batch_size, size["text_extra"]["vocab_size"], device)
    flops = count_step_flops(model, batch, args.precision, device)
    if args.compile:
        for module in [*model.encoders.values(), model.fusion]:
            module.compile()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    window = Window(device)
    (train_lightning if loop == "lightning" else train_plain)(model, batch, args, window)

    seconds = window.t1 - window.t0
    steps_per_s = args.steps / seconds
    achieved = flops * steps_per_s
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "loop": loop,
        "stubbed_modules": stubbed,
        "image_model": image_model,
        "text_model": "bert (random init): " + ", ".join(f"{k}={v}" for k, v in size["text"].items()),
        "fusion": size["fusion"],
        "parameters": params,
        "batch_size": args.batch_size,
        "text_len": TEXT_LEN,
        "image_size": IMAGE_SIZE,
        "precision": args.precision,
        "compile": args.compile,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "warmup_s": window.t0 - window.begin,
        "timed_s": seconds,
        "step_ms": 1000 * seconds / args.steps,
        "samples_per_s": args.batch_size * steps_per_s,
        "flops_per_step": flops,
        "flops_per_sample": flops / args.batch_size,
        "achieved_tflops": achieved / 1e12,
        "peak_tflops": args.peak_tflops,
        "mfu": achieved / (args.peak_tflops * 1e12),
        "peak_memory_allocated_gib": torch.cuda.max_memory_allocated(device) / 2**30
        if device.type == "cuda"
        else None,
        "peak_memory_reserved_gib": torch.cuda.max_memory_reserved(device) / 2**30
        if device.type == "cuda"
        else None,
        "gpu": window.gpu,
    }
    report(results)
    if os.environ.get("OUT"):
        out = Path(os.environ["OUT"]) / args.json
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")


def report(r: dict[str, Any]) -> None:
    gpu = r["gpu"]
    util = (
        f"{gpu['util_mean_pct']:.0f} % mean (min {gpu['util_min_pct']:.0f}, max {gpu['util_max_pct']:.0f}; "
        f"{gpu['samples']} samples, {gpu['source']})"
        if gpu.get("util_mean_pct") is not None
        else gpu["source"]
    )
    mem = (
        f"{r['peak_memory_allocated_gib']:.1f} GiB allocated, "
        f"{r['peak_memory_reserved_gib']:.1f} GiB reserved"
        if r["peak_memory_allocated_gib"] is not None
        else "n/a (no GPU)"
    )
    lines = [
        f"== Plait GPU benchmark{' (SMOKE: tiny sizes, CPU)' if r['smoke'] else ''} ==",
        f"device        {r['device']}  (torch {r['torch']}, python {r['python']})",
        f"model         {r['image_model']} + {r['text_model']} → attention {r['fusion']} → classification",
        f"parameters    {r['parameters'] / 1e6:.1f} M, all trained",
        f"run           batch {r['batch_size']}, {r['precision']}, compile {r['compile']}, loop {r['loop']}, "
        f"{r['warmup_steps']} warm-up + {r['timed_steps']} timed steps (warm-up {r['warmup_s']:.1f} s)",
        f"throughput    {r['samples_per_s']:.1f} samples/s, {r['step_ms']:.1f} ms/step",
        f"FLOPs         {r['flops_per_step'] / 1e12:.4f} TFLOP/step "
        f"({r['flops_per_sample'] / 1e9:.2f} GFLOP/sample)",
        f"achieved      {r['achieved_tflops']:.2f} TFLOP/s; "
        f"MFU {100 * r['mfu']:.2f} % of {r['peak_tflops']:.0f} TFLOP/s",
        f"peak memory   {mem}",
        f"GPU util      {util}",
    ]
    if r["stubbed_modules"]:
        lines.append(
            f"note          stand-in modules for absent {', '.join(r['stubbed_modules'])} (audio, unused)"
        )
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
