// The 3D view (NGL), loaded with the viewer panel only when the member opens it. Reads the job's view from the API
// (waiting while the portal prepares it), draws the solute (cartoon for protein and nucleic acids, sticks for the
// rest), the ions and water on demand, the periodic cell and the restrained atoms; plays the kept frames with a
// slider, telling the page each frame's step ("portal:frame", which moves the energy plot's cursor). While the job
// runs it reads the view again every 10 s and follows the newest frame; it follows the light/dark theme.
// viewer_loader.js adds this script when the panel is first swapped in, and calls portalViewerStart again for a
// panel swapped in later (the member opened another step's view, or built it again).
(function () {
  "use strict";
  window.portalViewerStart = function () {
    var root = document.getElementById("viewer");
    if (!root) return;
    if (window.portalViewer) window.portalViewer.dispose();  // the panel was opened again

    var REFRESH_MS = 10000;
    var PREPARING_MS = 1500;
    var PLAY_MS = 400;
    var status = document.getElementById("viewer-status");
    var noteLine = document.getElementById("viewer-note");
    var stageBox = document.getElementById("viewer-stage");
    var controls = document.getElementById("viewer-controls");
    var layers = document.getElementById("viewer-layers");
    var slider = document.getElementById("viewer-frame");
    var frameLabel = document.getElementById("viewer-frame-label");
    var playButton = document.getElementById("viewer-play");
    var solventBox = document.getElementById("viewer-solvent");
    var restrainedBox = document.getElementById("viewer-restrained");
    var cellBox = document.getElementById("viewer-cell");
    var rebuild = document.getElementById("viewer-rebuild-form");

    var stage = null;
    var view = null;  // the API's answer
    var components = {};  // part -> NGL component
    var cellComponent = null;
    var frameCache = {};  // "part:index" -> Promise of Float32Array
    var shownIndex = null;  // the frame on screen (its DCD index), null: the starting coordinates
    var timer = null;
    var player = null;
    var disposed = false;

    function cssVar(name) {
      return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    }

    function say(text) {
      status.textContent = text;
      status.hidden = !text;
    }

    function getJson(url) {
      return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
        if (!r.ok) throw new Error("view: HTTP " + r.status);
        return r.json();
      });
    }

    function loadNgl() {
      if (window.NGL) return Promise.resolve();
      return new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = root.dataset.ngl;
        script.onload = resolve;
        script.onerror = function () { reject(new Error("the viewer's script did not load")); };
        document.head.appendChild(script);
      });
    }

    // ------------------------------------------------------------------------------------------- the molecule

    function selection(indices) {
      return "@" + indices.join(",");
    }

    function represent(part, component) {
      var marked = (view.restrained || {})[part] || [];
      if (part === "solute") {
        component.addRepresentation("cartoon", { sele: "protein or nucleic", colorScheme: "residueindex" });
        component.addRepresentation("base", { sele: "nucleic", colorScheme: "chainname" });
        component.addRepresentation("licorice", { sele: "not (protein or nucleic) and not hydrogen" });
      } else if (part === "ions") {
        component.addRepresentation("spacefill", { radiusScale: 0.6 });
      } else {
        component.addRepresentation("line", { sele: "not hydrogen", opacity: 0.6 });
      }
      if (marked.length) {
        component.addRepresentation("ball+stick", { sele: selection(marked), color: cssVar("--restrained") || "#e8590c",
                                                    radiusScale: 1.2, name: "restrained",
                                                    visible: !restrainedBox || restrainedBox.checked });
      }
    }

    function loadPart(part) {
      var facts = view.parts[part];
      if (!facts || !facts.ready || components[part]) return Promise.resolve(components[part]);
      return stage.loadFile(facts.url, { ext: "pdb", name: part, defaultRepresentation: false }).then(function (c) {
        components[part] = c;
        represent(part, c);
        return shownIndex === null ? c : applyFrame(shownIndex).then(function () { return c; });
      });
    }

    function drawCell(lengths) {
      if (cellComponent) { stage.removeComponent(cellComponent); cellComponent = null; }
      if (!view.cell) return;
      var vectors = view.cell.vectors;
      if (lengths) vectors = vectorsOf(lengths);
      var o = view.cell.origin;
      var shape = new NGL.Shape("cell");
      var color = hexColor(cssVar("--muted") || "#888888");
      var corners = [];
      [-0.5, 0.5].forEach(function (i) {
        [-0.5, 0.5].forEach(function (j) {
          [-0.5, 0.5].forEach(function (k) {
            corners.push([0, 1, 2].map(function (axis) {
              return o[axis] + i * vectors[0][axis] + j * vectors[1][axis] + k * vectors[2][axis];
            }));
          });
        });
      });
      // corner index bits: i (4), j (2), k (1); an edge joins corners that differ in one bit
      for (var a = 0; a < 8; a++) {
        [1, 2, 4].forEach(function (bit) {
          if (!(a & bit)) shape.addCylinder(corners[a], corners[a | bit], color, 0.15);
        });
      }
      cellComponent = stage.addComponentFromObject(shape);
      cellComponent.addRepresentation("buffer");
      cellComponent.setVisibility(!cellBox || cellBox.checked);
    }

    function vectorsOf(cell) {  // a, b, c, alpha, beta, gamma -> box vectors (a along x, b in the xy plane)
      var rad = Math.PI / 180;
      var ca = Math.cos(cell[3] * rad), cb = Math.cos(cell[4] * rad), cg = Math.cos(cell[5] * rad);
      var sg = Math.sin(cell[5] * rad) || 1;
      var cy = (ca - cb * cg) / sg;
      var cz = Math.sqrt(Math.max(0, 1 - cb * cb - cy * cy));
      return [[cell[0], 0, 0], [cell[1] * cg, cell[1] * sg, 0], [cell[2] * cb, cell[2] * cy, cell[2] * cz]];
    }

    function hexColor(css) {
      var probe = document.createElement("span");
      probe.style.color = css;
      document.body.appendChild(probe);
      var rgb = getComputedStyle(probe).color.match(/\d+/g) || [128, 128, 128];
      probe.remove();
      return [Number(rgb[0]) / 255, Number(rgb[1]) / 255, Number(rgb[2]) / 255];
    }

    // ---------------------------------------------------------------------------------------------- frames

    function frameData(part, index) {
      var key = part + ":" + index;
      if (!frameCache[key]) {
        var url = view.frame_url.replace("{index}", index).replace("{part}", part);
        frameCache[key] = fetch(url, { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) throw new Error("frame: HTTP " + r.status);
          return r.arrayBuffer();
        }).then(function (buffer) { return new Float32Array(buffer); });
      }
      return frameCache[key];
    }

    function frameAt(position) {
      return view.frames[position];
    }

    function applyFrame(index) {
      var parts = Object.keys(components);
      return Promise.all(parts.map(function (part) { return frameData(part, index); })).then(function (arrays) {
        if (disposed) return;
        parts.forEach(function (part, i) {
          var component = components[part];
          if (arrays[i].length !== component.structure.atomCount * 3) return;
          component.structure.updatePosition(arrays[i]);
          component.updateRepresentations({ position: true });
        });
        shownIndex = index;
        var frame = view.frames.filter(function (f) { return f.index === index; })[0];
        if (frame && frame.cell) drawCell(frame.cell);
        root.dataset.frame = String(index);
        root.dataset.step = frame ? String(frame.step) : "";
        document.dispatchEvent(new CustomEvent("portal:frame", { detail: { step: frame ? frame.step : null } }));
      });
    }

    function showPosition(position) {
      var frame = frameAt(position);
      if (!frame) return Promise.resolve();
      slider.value = String(position);
      var thinned = view.frames_available > view.frames.length ? ", thinned from " + view.frames_available : "";
      frameLabel.textContent = "step " + frame.step.toLocaleString() + " (" + (position + 1) + " of " +
        view.frames.length + thinned + ")";
      return applyFrame(frame.index);
    }

    function updateControls(followNewest) {
      var count = view.frames.length;
      controls.hidden = count === 0;
      if (!count) return Promise.resolve();
      var atEnd = Number(slider.value) >= Number(slider.max);
      slider.max = String(count - 1);
      if (followNewest || shownIndex === null || atEnd) return showPosition(count - 1);
      var position = view.frames.map(function (f) { return f.index; }).indexOf(shownIndex);
      return showPosition(position < 0 ? count - 1 : position);
    }

    function togglePlay() {
      if (player) {
        clearInterval(player);
        player = null;
        playButton.textContent = "Play";
        playButton.setAttribute("aria-pressed", "false");
        return;
      }
      playButton.textContent = "Pause";
      playButton.setAttribute("aria-pressed", "true");
      var busy = false;
      player = setInterval(function () {
        if (busy) return;
        busy = true;
        var next = (Number(slider.value) + 1) % view.frames.length;
        showPosition(next).then(function () { busy = false; }, function () { busy = false; });
      }, PLAY_MS);
    }

    // ------------------------------------------------------------------------------------------ the view's life

    // Water and ions are written after the part the view opens with: their choice waits for them.
    function solventReady() {
      return ["ions", "water"].every(function (part) { return !view.parts[part] || view.parts[part].ready; });
    }

    function followParts() {
      if (disposed || solventReady()) return;
      setTimeout(function () { refresh().then(followParts, followParts); }, PREPARING_MS);
    }

    function describe() {
      solventBox.disabled = !solventReady();
      var words = view.atom_count.toLocaleString() + " atoms";
      if (!view.frames.length) {
        words += view.trajectory_path
          ? ": no frames of " + view.trajectory_path + " yet, the starting coordinates are shown"
          : ": the config writes no trajectory (DCDfreq), the starting coordinates are shown";
      }
      say(words + ".");
      noteLine.textContent = view.note || "";
      noteLine.hidden = !view.note;
      if (view.error_code) {
        noteLine.textContent = (view.note ? view.note + " " : "") + "Reading the frames failed: " + view.error_message +
          " (" + view.error_code + ")";
        noteLine.hidden = false;
      }
    }

    function start() {
      stage = new NGL.Stage(stageBox, { backgroundColor: cssVar("--card") || "white",
                                        tooltip: true });
      root.dataset.state = "DRAWING";
      return loadPart("solute").then(function () {
        var marked = Object.keys(view.restrained || {}).length > 0;
        document.getElementById("viewer-restrained-label").hidden = !marked;
        if (marked) document.getElementById("viewer-restrained-text").textContent = "Atoms " + view.restraint_label;
        document.getElementById("viewer-cell-label").hidden = !view.cell;
        solventBox.parentNode.hidden = !(view.parts.ions || view.parts.water);
        layers.hidden = false;
        if (!view.parts.solute) solventBox.checked = true;
        return solventBox.checked ? showSolvent() : null;
      }).then(function () {
        drawCell(null);
        stage.handleResize();
        stage.autoView();
        describe();
        return updateControls(true);
      }).then(function () {
        root.dataset.state = "READY";
        schedule();
        followParts();
      });
    }

    function showSolvent() {
      return Promise.all(["ions", "water"].map(loadPart)).then(function () {
        ["ions", "water"].forEach(function (part) {
          if (components[part]) components[part].setVisibility(solventBox.checked);
        });
      });
    }

    function refresh() {
      return getJson(root.dataset.viewUrl).then(function (answer) {
        if (disposed) return;
        var newest = answer.frames.length ? answer.frames[answer.frames.length - 1].index : null;
        var shown = view.frames.length ? view.frames[view.frames.length - 1].index : null;
        var grew = answer.frames.length !== view.frames.length || newest !== shown;
        view = answer;
        describe();
        if (solventBox.checked) showSolvent();  // a part written since
        if (grew) return updateControls(false);
      });
    }

    function schedule() {
      clearTimeout(timer);
      if (root.dataset.active === "true" && !disposed) {
        timer = setTimeout(function () { refresh().then(schedule, schedule); }, REFRESH_MS);
      }
    }

    function waitForView() {
      return getJson(root.dataset.viewUrl).then(function (answer) {
        if (disposed) return;
        view = answer;
        root.dataset.state = answer.state === "READY" ? "LOADING" : answer.state;  // READY once it is drawn
        if (answer.state === "PREPARING") {
          var what = answer.trajectory_path ? "the structure and the frames" : "the structure";
          say("Preparing the view: the portal reads " + what + "…");
          return new Promise(function (resolve) { setTimeout(resolve, PREPARING_MS); }).then(waitForView);
        }
        if (answer.state === "NONE") {
          say("The view has not been prepared: only the job's owner can open it first.");
          return;
        }
        if (answer.state === "FAILED") {
          say("The view could not be prepared: " + answer.error_message + " (" + answer.error_code + ")");
          if (rebuild) rebuild.hidden = false;
          return;
        }
        if (rebuild) rebuild.hidden = false;
        say("Loading the molecule…");
        return loadNgl().then(start);
      }).catch(function (error) {
        root.dataset.state = "ERROR";
        say("The view could not be shown: " + error.message + ".");
      });
    }

    slider.addEventListener("input", function () { showPosition(Number(slider.value)); });
    playButton.addEventListener("click", togglePlay);
    solventBox.addEventListener("change", showSolvent);
    if (restrainedBox) {
      restrainedBox.addEventListener("change", function () {
        Object.keys(components).forEach(function (part) {
          components[part].eachRepresentation(function (r) {
            if (r.name === "restrained") r.setVisibility(restrainedBox.checked);
          });
        });
      });
    }
    cellBox.addEventListener("change", function () {
      if (cellComponent) cellComponent.setVisibility(cellBox.checked);
    });
    function retheme() {
      if (!stage) return;
      stage.setParameters({ backgroundColor: cssVar("--card") || "white" });
      var frame = view.frames.filter(function (f) { return f.index === shownIndex; })[0];
      drawCell(frame ? frame.cell : null);
    }
    document.addEventListener("portal:theme", retheme);
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", retheme);
    function settled() {
      if (root.dataset.active !== "true") return;
      root.dataset.active = "false";
      clearTimeout(timer);
      // the finish reads the rest of the frames: look again a few times
      [5000, 20000, 60000].forEach(function (delay) {
        setTimeout(function () { if (view && view.state === "READY") refresh(); }, delay);
      });
    }
    document.addEventListener("job-terminal", settled);  // the job page's poll saw the job settle
    document.addEventListener("pipeline-settled", settled);  // the run page's: no step moves any more
    if (window.ResizeObserver) new ResizeObserver(function () { if (stage) stage.handleResize(); }).observe(stageBox);

    window.portalViewer = {
      stage: function () { return stage; },
      dispose: function () {
        disposed = true;
        clearTimeout(timer);
        if (player) clearInterval(player);
        if (stage) stage.dispose();
        stage = null;
      },
    };
    waitForView();
  };
  window.portalViewerStart();
})();
