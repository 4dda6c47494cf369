// A search snippet as nodes. The server escapes every <, > and & except its own <mark> tags; the page still
// never hands the string to the HTML parser: it splits on the two tags and builds text nodes and <mark>s.

const ENTITIES = { "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'", "&#x27;": "'" };

function unescape(text) {
  return text.replace(/&(?:lt|gt|amp|quot|#39|#x27);/g, (entity) => ENTITIES[entity]);
}

export function snippetNodes(snippet) {
  const nodes = [];
  let marked = false;
  for (const piece of snippet.split(/(<mark>|<\/mark>)/)) {
    if (piece === "<mark>") {
      marked = true;
    } else if (piece === "</mark>") {
      marked = false;
    } else if (piece) {
      const text = document.createTextNode(unescape(piece));
      if (marked) {
        const mark = document.createElement("mark");
        mark.append(text);
        nodes.push(mark);
      } else {
        nodes.push(text);
      }
    }
  }
  return nodes;
}
