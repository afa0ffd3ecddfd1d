namespace Pyprobe.Cli.Output.Profiles;

/// <summary>
/// The flame graph's behaviour, embedded in the SVG: hover shows a frame's title at the bottom; a click zooms
/// into a frame (its ancestors stay as faded full-width bars, everything outside it hides); "Reset Zoom", a click
/// on "all" or Escape zooms out; "Search", Ctrl-F or '/' asks for a regular expression, highlights the frames
/// whose label matches and shows the share of samples under them (nested matches counted once); <c>?s=TERM</c> in
/// the URL searches on load. Zoom and search work from each frame's data-s (first sample), data-n (samples) and
/// data-d (depth), so they are exact whatever the pixel sizes. Headless tests can call
/// <c>pyprobeZoom(g)</c>, <c>pyprobeSearch(term)</c> and <c>pyprobeReset()</c>.
/// </summary>
internal static class FlameGraphScript
{
    public const string Source = """
        (function () {
          'use strict';
          var svg = document.documentElement;
          var frames = Array.prototype.slice.call(document.getElementsByClassName('f'));
          var root = frames[0];
          var pad = +svg.getAttribute('data-pad');
          var inner = +svg.getAttribute('data-width') - 2 * pad;
          var charWidth = +svg.getAttribute('data-char-width');
          var total = +root.getAttribute('data-n');
          var details = document.getElementById('details');
          var matched = document.getElementById('matched');
          var searchButton = document.getElementById('search');
          var searching = false;

          function num(g, name) { return +g.getAttribute('data-' + name); }
          function rectOf(g) { return g.getElementsByTagName('rect')[0]; }
          function textOf(g) { return g.getElementsByTagName('text')[0]; }
          function titleOf(g) { return g.getElementsByTagName('title')[0].textContent; }
          function labelOf(g) {
            var t = titleOf(g);
            var cut = t.lastIndexOf(' \u2014 ');
            return cut < 0 ? t : t.substring(0, cut);
          }
          frames.forEach(function (g) { rectOf(g).setAttribute('data-fill', rectOf(g).getAttribute('fill')); });

          function fit(g) {
            var r = rectOf(g), t = textOf(g), label = labelOf(g);
            var w = +r.getAttribute('width');
            var chars = Math.floor((w - 6) / charWidth);
            t.setAttribute('x', (+r.getAttribute('x') + 3).toFixed(2));
            t.textContent = chars < 3 ? '' : (label.length <= chars ? label : label.substring(0, chars - 2) + '..');
          }

          function place(g, x, w, cls) {
            var r = rectOf(g);
            r.setAttribute('x', x.toFixed(2));
            r.setAttribute('width', w.toFixed(2));
            g.setAttribute('class', cls);
            if (cls !== 'f hide') fit(g);
          }

          function zoom(target) {
            var s = num(target, 's'), n = num(target, 'n'), d = num(target, 'd');
            var scale = inner / n;
            frames.forEach(function (g) {
              var gs = num(g, 's'), gn = num(g, 'n'), gd = num(g, 'd');
              if (gd >= d && gs >= s && gs + gn <= s + n) place(g, pad + (gs - s) * scale, gn * scale, 'f');
              else if (gd < d && gs <= s && gs + gn >= s + n) place(g, pad, inner, 'f parent');
              else place(g, 0, 0, 'f hide');
            });
            document.getElementById('reset').setAttribute('class', target === root ? 'button hide' : 'button');
          }

          function escapeRegExp(text) { return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

          function search(term) {
            if (!term) { resetSearch(); return 0; }
            var re;
            try { re = new RegExp(term); } catch (e) { re = new RegExp(escapeRegExp(term)); }
            var hits = [];
            frames.forEach(function (g) {
              var r = rectOf(g);
              if (g !== root && re.test(labelOf(g))) {
                r.setAttribute('fill', 'rgb(230,0,230)');
                hits.push([num(g, 's'), num(g, 's') + num(g, 'n')]);
              } else {
                r.setAttribute('fill', r.getAttribute('data-fill'));
              }
            });
            hits.sort(function (a, b) { return a[0] - b[0]; });
            var covered = 0, end = -1;
            hits.forEach(function (h) {
              var from = Math.max(h[0], end);
              if (h[1] > from) covered += h[1] - from;
              if (h[1] > end) end = h[1];
            });
            var share = total > 0 ? 100 * covered / total : 0;
            matched.textContent = 'Matched: ' + share.toFixed(2) + '%';
            searchButton.textContent = 'Reset Search';
            searching = true;
            return share;
          }

          function resetSearch() {
            frames.forEach(function (g) { rectOf(g).setAttribute('fill', rectOf(g).getAttribute('data-fill')); });
            matched.textContent = '';
            searchButton.textContent = 'Search';
            searching = false;
          }

          function askSearch() {
            if (searching) { resetSearch(); return; }
            var term = window.prompt('Search frames (regular expression)', '');
            if (term) search(term);
          }

          function frameOf(node) {
            while (node && node !== svg) {
              if (node.getAttribute && /(^| )f( |$)/.test(node.getAttribute('class') || '')) return node;
              node = node.parentNode;
            }
            return null;
          }

          svg.addEventListener('click', function (e) {
            var g = frameOf(e.target);
            if (g) zoom(g);
          });
          svg.addEventListener('mouseover', function (e) {
            var g = frameOf(e.target);
            details.textContent = g ? titleOf(g) : ' ';
          });
          document.getElementById('reset').addEventListener('click', function (e) { e.stopPropagation(); zoom(root); });
          searchButton.addEventListener('click', function (e) { e.stopPropagation(); askSearch(); });
          window.addEventListener('keydown', function (e) {
            if ((e.ctrlKey || e.metaKey) && (e.key === 'f' || e.key === 'F') || e.key === '/') {
              e.preventDefault();
              askSearch();
            } else if (e.key === 'Escape') {
              zoom(root);
              resetSearch();
            }
          });

          window.pyprobeZoom = zoom;
          window.pyprobeSearch = search;
          window.pyprobeReset = function () { zoom(root); resetSearch(); };

          var query = /[?&]s=([^&]*)/.exec(window.location.search || '');
          if (query) search(decodeURIComponent(query[1].replace(/\+/g, ' ')));
        })();
        """;
}
