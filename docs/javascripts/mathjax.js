// MathJax 3 settings. Markdown pages: pymdownx.arithmatex (generic mode) turns $...$ / $$...$$ into
// \(...\) / \[...\] inside elements of class "arithmatex". Tutorials (mkdocs-jupyter): markdown
// cells keep $...$ inside elements of class "jp-RenderedMarkdown". Only those two are typeset, so a
// dollar sign in ordinary text (a price) is left alone.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown"
  }
};

// Typeset again after material's instant navigation swaps the page.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    MathJax.startup.output.clearCache();
    MathJax.typesetClear();
    MathJax.texReset();
    MathJax.typesetPromise();
  });
}
