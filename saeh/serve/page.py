"""The retrieval page: one HTML document with its CSS and script inline (no CDN, no external asset: it works
offline). The script reads the sources from /api/sources, asks /api/query or /api/upload, and draws one column per
source: its scores and settings, the query's code as bits, precision@k, the Hamming ball and the top-k grid."""

import html

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>saeh retrieval</title>
<style>
body{font-family:system-ui,sans-serif;margin:1em;background:#fafafa;color:#222}
h1{font-size:1.3em;margin:0 0 .5em}
fieldset{display:inline-block;border:1px solid #ccc;margin:0 .5em .5em 0;padding:.3em .6em;vertical-align:top}
input[type=number]{width:5em}
#error{color:#b00;font-weight:bold;min-height:1.2em}
#query img{width:96px;image-rendering:pixelated;border:2px solid #555}
#columns{display:flex;gap:1em;align-items:flex-start}
.column{flex:1;background:#fff;border:1px solid #ddd;padding:.6em;min-width:0}
.column h2{font-size:1.05em;margin:.1em 0}
.scores,.stats{font-size:.9em;margin:.2em 0}
details{font-size:.8em}
.bits{display:flex;flex-wrap:wrap;gap:1px;margin:.3em 0}
.bit{width:10px;height:10px;border:1px solid #999}
.bit.one{background:#222}
.grid{display:flex;flex-wrap:wrap;gap:6px}
.result{width:84px;font-size:.72em;text-align:center;border:3px solid #ccc;padding:2px;background:#fff}
.result img{width:76px;height:76px;object-fit:contain;image-rendering:pixelated}
.result.correct{border-color:#2a2}
.result.wrong{border-color:#d22}
</style></head>
<body>
<h1>saeh retrieval</h1>
<div>
<fieldset><legend>query set</legend>
 index <input id="row" type="number" min="0" value="0"> <button id="go-row">query</button>
 <select id="class-select"></select> <button id="go-class">random of class</button>
 <button id="go-random">random</button></fieldset>
<fieldset><legend>upload</legend><input id="upload" type="file" accept="image/*"></fieldset>
<fieldset><legend>results</legend>
 k <input id="k" type="number" min="1" value="__TOP_K__">
 radius <input id="radius" type="number" min="0" placeholder="any"> <button id="apply">apply</button></fieldset>
</div>
<div id="error"></div>
<div id="query"></div>
<div id="columns"></div>
<script>
"use strict";
const maxUpload = __MAX_UPLOAD__;
let sources = [], last = null;
const $ = id => document.getElementById(id);
function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}
function percent(value) { return value === null ? "n/a" : (100 * value).toFixed(1) + "%"; }
function settings() {
  const params = new URLSearchParams({k: $("k").value || "__TOP_K__"});
  if ($("radius").value !== "") params.set("radius", $("radius").value);
  return params;
}
async function run(query) {
  last = query;
  $("error").textContent = "";
  const params = settings();
  let response;
  if (query.file) {
    if (query.file.size > maxUpload) {
      $("error").textContent = "the file is larger than the limit of " + maxUpload + " bytes";
      return;
    }
    response = await fetch("/api/upload?" + params, {method: "POST", body: query.file});
  } else {
    for (const [name, value] of Object.entries(query)) params.set(name, value);
    response = await fetch("/api/query?" + params);
  }
  const body = await response.json().catch(() => ({error: "the server answered " + response.status}));
  if (!response.ok) { $("error").textContent = body.error; return; }
  if (body.query.row !== null) { $("row").value = body.query.row; last = {row: body.query.row}; }
  draw(body);
}
function draw(body) {
  const query = $("query");
  query.replaceChildren(el("img", {src: body.query.image, alt: "query"}),
    el("span", {}, " query " + (body.query.row === null ? "(uploaded image)" : body.query.row)
                   + (body.query.label ? " [" + body.query.label + "]" : " (no label)")));
  body.answers.forEach(answer => {
    const column = $("column-" + answer.source);
    const bits = column.querySelector(".bits");
    bits.replaceChildren(...[...answer.code].map(
      bit => el("span", {class: "bit" + (bit === "1" ? " one" : ""), title: bit})));
    let stats = "precision@" + body.top_k + ": " + percent(answer.precision_at_k);
    if (answer.radius !== null)
      stats += " | Hamming ball of radius " + answer.radius + ": " + answer.ball_size + " images, precision "
               + percent(answer.ball_precision);
    column.querySelector(".stats").textContent = stats;
    const grid = column.querySelector(".grid");
    grid.replaceChildren(...answer.results.map(result => {
      const mark = result.relevant === true ? " correct" : result.relevant === false ? " wrong" : "";
      const cell = el("div", {class: "result" + mark, title: result.path || ""});
      cell.append(el("img", {src: result.image, alt: "database image " + result.id}),
                  el("div", {}, "d=" + result.distance + " #" + result.id),
                  el("div", {}, result.label === null ? "" : result.label));
      return cell;
    }));
  });
}
function header(source, position) {
  const column = el("div", {class: "column", id: "column-" + position});
  column.append(el("h2", {}, source.name + " (" + source.bits + " bits)"));
  const first = ["map@1000", "precision@r2"];  // the paper's two measures lead
  const scores = Object.entries(source.scores).filter(([name, value]) => typeof value === "number")
    .sort(([a], [b]) => (first.includes(b) - first.includes(a)) || first.indexOf(a) - first.indexOf(b))
    .map(([name, value]) => name + " "
         + (Math.abs(value) <= 1 && !Number.isInteger(value) ? (100 * value).toFixed(2) : value));
  column.append(el("div", {class: "scores"},
                    scores.length ? "the run's scores: " + scores.join(" | ") : "no scores.json beside the model"));
  const details = el("details");
  details.append(el("summary", {}, "settings"), el("pre", {}, JSON.stringify(source.settings, null, 1)));
  column.append(details, el("div", {}, "database: " + source.database_size + " images | query code:"),
                el("div", {class: "bits"}), el("div", {class: "stats"}), el("div", {class: "grid"}));
  return column;
}
async function start() {
  const body = await (await fetch("/api/sources")).json();
  sources = body.sources;
  $("columns").replaceChildren(...sources.map(header));
  $("row").max = Math.max(0, sources[0].query_size - 1);
  $("class-select").replaceChildren(...sources[0].class_names.map((name, id) => el("option", {value: id}, name)));
  $("go-row").onclick = () => run({row: $("row").value});
  $("go-class").onclick = () => run({class: $("class-select").value});
  $("go-random").onclick = () => run({random: 1});
  $("apply").onclick = () => last && run(last);
  $("upload").onchange = () => $("upload").files.length && run({file: $("upload").files[0]});
  document.title = "saeh retrieval: " + sources.map(source => source.name).join(" vs ");
  if (sources[0].query_size) run({row: 0});
}
start();
</script>
</body></html>
"""


def page_html(top_k=10, max_upload_bytes=0):
    """The page, with the default k and the upload limit written in."""
    return (TEMPLATE.replace("__TOP_K__", html.escape(str(int(top_k))))
            .replace("__MAX_UPLOAD__", str(int(max_upload_bytes))))
