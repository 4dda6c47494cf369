// A message's content as nodes: a string as text; an array of parts with its text parts as text and every
// other part as a small labelled box (nothing is fetched: an image or file is shown by its address only).

import { h } from "./dom.js";

function part(piece) {
  switch (piece.type) {
    case "text":
      return h("p", { className: "part-text" }, piece.text);
    case "reasoning":
      return box("Reasoning", h("p", {}, piece.text));
    case "tool_call":
      return box(`Tool call: ${piece.name}`, h("pre", {}, piece.arguments));
    case "tool_result":
      return box(piece.is_error ? "Tool result (error)" : "Tool result", h("pre", {}, piece.content));
    case "image":
      return box("Image", h("p", { className: "address" }, piece.url));
    case "file":
      return box(`File: ${piece.name ?? "unnamed"}`, h("p", { className: "address" }, piece.url));
    default:
      return box(`Part: ${piece.type}`);
  }
}

function box(label, ...children) {
  return h("div", { className: "part-box" }, h("p", { className: "part-label" }, label), children);
}

export function contentNodes(content) {
  if (typeof content === "string") return [h("p", { className: "part-text" }, content)];
  return content.map(part);
}
