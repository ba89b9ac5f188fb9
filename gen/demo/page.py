"""The demo's HTML: a model's page is built from its declared arguments (gen.runtime.arguments), so a
family's new argument shows up as a control with no page code; the script posts them to
/api/generate and reads its server-sent events for progress and previews. No external scripts or
fonts: the page works offline."""

from __future__ import annotations

import html
import json
from urllib.parse import quote

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px}header a{color:#9cc3ff}
main{display:flex;gap:24px;padding:24px;flex-wrap:wrap}
form{background:#fff;padding:16px;border-radius:8px;min-width:280px;max-width:340px;box-shadow:0 1px 3px #0002}
label{display:block;font-size:13px;margin:10px 0 2px;font-weight:600}
.help{font-weight:400;color:#667;font-size:12px}
input[type=number],input[type=text],select{width:100%;box-sizing:border-box;padding:6px;border:1px solid #ccd;border-radius:4px}
button{margin-top:16px;width:100%;padding:10px;background:#2f6fe4;color:#fff;border:0;border-radius:6px;font-size:15px;cursor:pointer}
button:disabled{background:#99a}
#out{flex:1;min-width:300px}#status{margin:8px 0;color:#445}
progress{width:100%}#preview{image-rendering:pixelated;width:128px;display:none;margin:8px 0}
.grid{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;padding:6px;border-radius:6px;box-shadow:0 1px 3px #0002;font-size:12px}
.card img{display:block;width:160px;image-rendering:pixelated}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #dde;padding:4px 8px;font-size:13px;text-align:left}
"""


def _page(title: str, body: str, script: str = "") -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}<script>{script}</script></body></html>")


def index_page(models: list[dict]) -> str:
    rows = "".join(f"<tr><td><a href='/m/{quote(m['name'])}'>{html.escape(m['name'])}</a></td>"
                   f"<td>{html.escape(m['family'])}</td><td>{html.escape(m['source'])}</td>"
                   f"<td>{'ready' if m['available'] else 'unavailable: ' + html.escape(m['reason'])}</td></tr>" for m in models)
    return _page("gen demo", "<header><b>gen demo</b> &middot; <a href='/api'>JSON API</a></header><main>"
                 f"<table><tr><th>model</th><th>family</th><th>from</th><th>state</th></tr>{rows}</table></main>")


def _control(a: dict) -> str:
    name, kind = a["name"], a["kind"]
    hid = f"arg-{name}"
    text = "the input image, uploaded from this computer" if name == "image" else a["help"]  # no paths here
    help_ = html.escape(text + (f" ({a['rule']})" if a.get("rule") else ""))
    label = f"<label for='{hid}'>{html.escape(name)} <span class='help'>{help_}</span></label>"
    attrs = f"id='{hid}' name='{name}' data-kind='{kind}'"
    if a.get("choices"):
        first = "<option value=''>(default)</option>" if name != "labels" else "<option value=''>(cycle through classes)</option>"
        values = range(len(a["choices"])) if name == "labels" else a["choices"]
        options = "".join(f"<option value='{html.escape(str(v))}'>{html.escape(str(c))}</option>"
                          for v, c in zip(values, a["choices"]))
        return label + f"<select {attrs}>{first}{options}</select>"
    if kind == "image":
        return label + f"<input type='file' accept='image/*' {attrs}>"
    if kind == "texts":
        return label + f"<input type='text' {attrs}>"
    if kind == "seed" and name == "seed":  # the request's seed: a default, and a random toggle
        return label + (f"<input type='number' step='1' value='0' {attrs}>"
                        f"<label class='help'><input type='checkbox' id='random-seed'> random seed</label>")
    bounds = "".join(f" {k}='{html.escape(str(a[b]))}'" for k, b in (("min", "low"), ("max", "high")) if a.get(b) is not None)
    if kind == "fraction":
        bounds = " min='0' max='1'"
    step = "1" if kind == "int" else "any"
    value = f" value='{html.escape(str(a['default']))}'" if a.get("default") is not None else (" value='1'" if name == "n" else "")
    return label + f"<input type='number' step='{step}'{bounds}{value} {attrs}>"


def model_page(m: dict) -> str:
    precision = ""
    if m.get("precisions"):
        options = "<option value=''>(default: fp32 on cpu)</option>" + "".join(
            f"<option>{html.escape(p)}</option>" for p in m["precisions"])
        precision = f"<label for='precision'>precision</label><select id='precision'>{options}</select>"
    controls = "".join(_control(a) for a in m["arguments"]) + precision
    body = (f"<header><a href='/'>gen demo</a> &middot; <b>{html.escape(m['name'])}</b> "
            f"({html.escape(m['family'])}) &middot; <a href='/api'>API</a></header><main>"
            f"<form id='controls' onsubmit='return false'>{controls}<button id='generate' type='button'>Generate</button></form>"
            "<section id='out'><div id='status'>ready</div><progress id='progress' value='0' max='1' hidden></progress>"
            "<img id='preview' alt='preview of the denoised estimate'><div id='results' class='grid'></div></section></main>")
    model = json.dumps(m["name"]).replace("<", "\\u003c")  # a JS string literal, whatever the folder is called
    return _page(f"gen demo: {m['name']}", body, SCRIPT.replace('"__MODEL__"', model))


SCRIPT = r"""
const MODEL = "__MODEL__";
const $ = (id) => document.getElementById(id);
function dataUrl(file) {
  return new Promise((resolve, reject) => { const r = new FileReader(); r.onload = () => resolve(r.result); r.onerror = reject; r.readAsDataURL(file); });
}
async function request() {
  const files = {};
  for (const el of document.querySelectorAll("input[type=file]")) if (el.files[0]) files[el.name] = await dataUrl(el.files[0]);
  const body = {model: MODEL, stream: true};
  if ($("random-seed") && $("random-seed").checked) $("arg-seed").value = Math.floor(Math.random() * 2147483647);
  document.querySelectorAll("[data-kind]").forEach((el) => {
    const k = el.dataset.kind, name = el.name;
    if (k === "image") { if (files[name]) body[name] = files[name]; return; }
    if (el.value === "") return;
    if (k === "int" || k === "seed" || k === "labels") body[name] = parseInt(el.value, 10);
    else if (k === "float" || k === "fraction") body[name] = parseFloat(el.value);
    else body[name] = el.value;
  });
  if ($("precision") && $("precision").value) body.precision = $("precision").value;
  return body;
}
function show(result) {
  const out = $("results"); out.replaceChildren();
  result.images.forEach((im) => {
    const src = "data:image/png;base64," + im.png;
    // built from elements and text, never innerHTML: the model's name (a folder's) may hold markup
    const card = document.createElement("div"); card.className = "card";
    const img = document.createElement("img"); img.className = "result"; img.dataset.index = im.index; img.src = src;
    const link = document.createElement("a"); link.download = `${MODEL}-seed${im.seed}-${im.index}.png`; link.href = src;
    link.textContent = "download";
    card.append(img, `seed ${im.seed} \u00b7 image ${im.index + 1} of ${result.images.length}`, document.createElement("br"),
                `${result.seconds_per_image} s each \u00b7 `, link);
    out.appendChild(card);
  });
}
async function generate() {
  const button = $("generate"); button.disabled = true;
  $("status").textContent = "generating ..."; $("progress").hidden = false; $("progress").value = 0;
  try {
    const resp = await fetch("/api/generate", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(await request())});
    if (!resp.ok) { const e = await resp.json(); $("status").textContent = "error: " + e.detail; return; }
    const reader = resp.body.getReader(), decoder = new TextDecoder(); let buffer = "";
    for (;;) {
      const {value, done} = await reader.read(); if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const kind = block.match(/^event: (.*)$/m)[1], data = JSON.parse(block.match(/^data: (.*)$/m)[1]);
        if (kind === "step") {
          $("progress").max = data.steps; $("progress").value = data.step;
          $("status").textContent = `step ${data.step} of ${data.steps}`;
          if (data.preview) { $("preview").src = "data:image/png;base64," + data.preview; $("preview").style.display = "block"; }
        } else if (kind === "done") {
          show(data); $("status").textContent = `done: ${data.images.length} image(s) in ${data.seconds} s (seed ${data.seed})`;
        } else if (kind === "error") { $("status").textContent = "error: " + data.detail; }
      }
    }
  } catch (e) { $("status").textContent = "error: " + e; }
  finally { button.disabled = false; $("progress").hidden = true; }
}
$("generate").addEventListener("click", generate);
"""


def api_page(schema: dict, models: list[dict]) -> str:
    paths = "".join(f"<tr><td>{html.escape(method.upper())}</td><td><code>{html.escape(path)}</code></td>"
                    f"<td>{html.escape(op.get('description') or op.get('summary') or '')}</td></tr>"
                    for path, ops in schema.get("paths", {}).items() for method, op in ops.items())
    args = "".join(f"<tr><td>{html.escape(m['name'])}</td><td>{html.escape(', '.join(a['name'] for a in m['arguments']))}</td></tr>"
                   for m in models)
    return _page("gen demo API", "<header><a href='/'>gen demo</a> &middot; <b>JSON API</b> (schema: "
                 "<a href='/openapi.json'>/openapi.json</a>)</header><main><section>"
                 f"<h3>Endpoints</h3><table><tr><th>method</th><th>path</th><th>what</th></tr>{paths}</table>"
                 f"<h3>Models and their arguments</h3><table><tr><th>model</th><th>arguments</th></tr>{args}</table>"
                 "<h3>Example</h3><pre>curl -s localhost:7860/api/generate -H 'Content-Type: application/json' "
                 "-d '{\"model\": \"ddpm\", \"n\": 4, \"seed\": 1, \"steps\": 20}'</pre>"
                 "<p>422: a bad or unknown argument (the response names it); 429: the model is busy (Retry-After); "
                 "413: the body is too large; 415: the body is not sent as application/json; 403: the request came from "
                 "another site's page (an Origin other than the demo's own); 503: a served model is unavailable. "
                 "Images in requests (image, mask) are base64 PNG, JPEG or WebP.</p></section></main>")
