"""Reference outputs from the real TensorFlow.js (pure-JS CPU backend) running in node.

The JS side (``@tensorflow/tfjs``, no native download) lives in
``$FACEROBUST_CACHE/npm/tfjs-oracle``; :func:`install_oracle` puts it there with ``npm install``
(``facerobust models fetch tfjs-oracle`` or ``... fetch all``). Used by tests to check the torch
interpreter op for op against TF.js.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facerobust.paths import cache_subdir

TFJS_PACKAGE = "@tensorflow/tfjs"
TFJS_VERSION = "4.22.0"

_SCRIPT = r"""
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
async function main() {
  const [modelPath, inPath, shapeJson, outNamesJson, outPath] = process.argv.slice(2);
  const model = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const dir = path.dirname(modelPath);
  const specs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    for (const w of group.weights) specs.push(w);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
  }
  const joined = Buffer.concat(buffers);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.length);
  await tf.setBackend('cpu');
  const graph = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: model.modelTopology, weightSpecs: specs, weightData: weightData,
    format: model.format, generatedBy: model.generatedBy, convertedBy: model.convertedBy,
  }));
  const raw = fs.readFileSync(inPath);
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  const input = tf.tensor(data, JSON.parse(shapeJson), 'float32');
  const names = JSON.parse(outNamesJson);
  let outs = graph.execute(input, names);
  if (!Array.isArray(outs)) outs = [outs];
  const result = [];
  for (const t of outs) result.push({shape: t.shape, data: Array.from(await t.data())});
  fs.writeFileSync(outPath, JSON.stringify(result));
}
main().catch((e) => { console.error(e); process.exit(1); });
"""


def oracle_dir() -> Path:
    return cache_subdir("npm") / "tfjs-oracle"


def oracle_available() -> str | None:
    """``None`` when the oracle can run, else the reason it cannot."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (oracle_dir() / "node_modules" / "@tensorflow" / "tfjs" / "package.json").is_file():
        return (f"{TFJS_PACKAGE} is not installed in {oracle_dir()} "
                "(run `facerobust models fetch tfjs-oracle`)")
    return None


def install_oracle() -> Path:
    """``npm install @tensorflow/tfjs`` into :func:`oracle_dir` (needs npm and the registry)."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not on PATH; cannot install the TF.js oracle")
    folder = oracle_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps({"name": "tfjs-oracle", "private": True}))
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", f"{TFJS_PACKAGE}@{TFJS_VERSION}"],
        cwd=folder, check=True,
    )
    return folder


def run_oracle(model_json: Path, x: np.ndarray, outputs: Sequence[str],
               *, timeout: float = 600.0) -> list[np.ndarray]:
    """Run TF.js on ``x`` (float32, the graph's input layout) and return ``outputs``."""
    reason = oracle_available()
    if reason is not None:
        raise FileNotFoundError(reason)
    folder = oracle_dir()
    script = folder / "run_graph.js"
    if not script.is_file() or script.read_text() != _SCRIPT:
        script.write_text(_SCRIPT)
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "x.bin", Path(tmp) / "out.json"
        np.ascontiguousarray(x, dtype="<f4").tofile(inp)
        subprocess.run(
            ["node", str(script), str(Path(model_json).resolve()), str(inp),
             json.dumps(list(x.shape)), json.dumps(list(outputs)), str(out)],
            cwd=folder, check=True, timeout=timeout, capture_output=True,
        )
        result = json.loads(out.read_text())
    return [np.asarray(r["data"], dtype=np.float32).reshape(r["shape"]) for r in result]
