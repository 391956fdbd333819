// Chunked, resumable uploads of a job's inputs (the inputs page): one file, a whole folder (each file under its
// path in the folder), or an archive the portal unpacks. For each chosen file: ask the portal how
// many bytes of (name, size) it already has, then PUT the rest in chunks with Content-Range. A 409 says where
// the portal's copy stops, so the upload resyncs; network errors and busy answers are retried after a pause;
// choosing the same file again after a reload continues where it stopped. A file is never read whole.
(function () {
  "use strict";
  var section = document.getElementById("uploads");
  if (!section) return;
  var urlTemplate = section.dataset.uploadUrl;
  var maxBytes = Number(section.dataset.maxBytes);
  var chunkBytes = Number(section.dataset.chunkBytes);
  var csrfToken = section.dataset.csrfToken;
  var RETRIES = 5;
  var RESYNCS = 3;

  function uploadUrl(name) {
    return urlTemplate.replace("__name__", encodeURIComponent(name));
  }

  function sizeText(bytes) {
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    var unit = 0;
    while (bytes >= 1024 && unit < units.length - 1) { bytes /= 1024; unit += 1; }
    return (unit ? bytes.toFixed(1) : String(bytes)) + " " + units[unit];
  }

  function pause(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  // One request: resolves {status, body} for any HTTP answer, rejects on a network error.
  function send(method, url, body, headers, onProgress) {
    return new Promise(function (resolve, reject) {
      var request = new XMLHttpRequest();
      request.open(method, url);
      request.setRequestHeader("X-CSRFToken", csrfToken);
      Object.keys(headers).forEach(function (name) { request.setRequestHeader(name, headers[name]); });
      if (onProgress) request.upload.addEventListener("progress", function (event) { onProgress(event.loaded); });
      request.onload = function () {
        var parsed = null;
        try { parsed = JSON.parse(request.responseText); } catch (ignored) { parsed = null; }
        resolve({ status: request.status, body: parsed });
      };
      request.onerror = function () { reject(new Error("The connection failed.")); };
      request.send(body);
    });
  }

  function errorOf(answer) {
    var error = answer.body && answer.body.error;
    return error || { code: "HTTP_" + answer.status, message: "The portal answered " + answer.status + "." };
  }

  // Worth another try after a pause: the network, a busy or overloaded portal.
  function isTransient(answer) {
    return answer.status >= 500 || answer.status === 429 || errorOf(answer).code === "UPLOAD_IN_PROGRESS";
  }

  function Upload(element, file, name) {
    this.progress = element.querySelector("[data-upload-progress]");
    this.percent = element.querySelector("[data-upload-percent]");
    this.message = element.querySelector("[data-upload-message]");
    this.retry = element.querySelector("[data-upload-retry]");
    this.file = file;
    this.name = name;
    this.received = 0;
    this.progress.setAttribute("aria-label", "Upload of " + name);
    this.retry.onclick = this.start.bind(this);
    var upload = this;
    this.done = new Promise(function (resolve) { upload.finished = resolve; });
  }

  Upload.prototype.show = function (done, text) {
    var percent = Math.floor((done / this.file.size) * 100);
    this.progress.hidden = false;
    this.progress.value = percent;
    this.percent.textContent = percent + " %";
    if (text) {
      this.message.textContent = text;
      this.message.classList.remove("error");
    }
  };

  // A refusal shows the portal's message and code; "Try again" is offered when trying again can help.
  Upload.prototype.fail = function (error, canRetry) {
    this.progress.hidden = true;
    this.percent.textContent = "";
    this.message.textContent = error.message + (error.code ? " (" + error.code + ")" : "");
    this.message.classList.add("error");
    this.retry.hidden = !canRetry;
  };

  Upload.prototype.start = function () {
    var upload = this;
    upload.retry.hidden = true;
    if (upload.file.size > maxBytes) {
      upload.fail({ code: "FILE_TOO_LARGE", message: upload.file.name + " is " + sizeText(upload.file.size) +
        ", more than this cluster's limit of " + sizeText(maxBytes) + "." });
      upload.finished();
      return;
    }
    if (upload.file.size === 0) {
      upload.fail({ code: "FILE_EMPTY", message: upload.file.name + " is empty: there is nothing to upload." });
      upload.finished();
      return;
    }
    upload.run().catch(function (reason) {
      upload.fail(reason instanceof Error
        ? { code: "", message: reason.message + " Try again: the upload continues where it stopped." }
        : errorOf(reason), true);
    }).then(function () { upload.finished(); });
  };

  // Attempts until done or refused; a pause before each retry, the count reset whenever bytes got through.
  Upload.prototype.run = async function () {
    var failures = 0;
    for (;;) {
      var before = this.received;
      try {
        return await this.attempt();
      } catch (reason) {
        failures = this.received > before ? 1 : failures + 1;
        if (failures > RETRIES) throw reason;
        this.show(this.received, "Interrupted: trying again in " + failures + " s…");
        await pause(1000 * failures);
      }
    }
  };

  // Ask where the portal's copy stops, then send the rest chunk by chunk. Throws on anything transient.
  Upload.prototype.attempt = async function () {
    var size = this.file.size;
    this.show(this.received, "Asking the portal how much of " + this.name + " it has…");
    var answer = await send("GET", uploadUrl(this.name) + "?size=" + size, null, {});
    if (answer.status !== 200) {
      if (isTransient(answer)) throw answer;
      return this.fail(errorOf(answer));
    }
    this.name = answer.body.name;
    this.received = answer.body.received;
    this.show(this.received, this.received ? "Continuing from " + sizeText(this.received) + "…" : "Sending…");
    var resyncs = 0;
    for (;;) {
      const start = this.received;
      const end = Math.min(start + chunkBytes, size);
      const headers = { "Content-Range": "bytes " + start + "-" + (end - 1) + "/" + size,
                        "Content-Type": "application/octet-stream" };
      const onProgress = (loaded) => this.show(start + loaded);
      answer = await send("PUT", uploadUrl(this.name), this.file.slice(start, end), headers, onProgress);
      if (answer.status === 200) {
        this.received = answer.body.received;
        resyncs = 0;
        continue;
      }
      if (answer.status === 202) {
        this.received = size;
        this.show(size, this.name + " received: it is checked and copied to the cluster.");
        document.body.dispatchEvent(new CustomEvent("upload-done", { bubbles: true }));
        return;
      }
      var error = errorOf(answer);
      if (error.code === "UPLOAD_OFFSET_MISMATCH" && error.details && resyncs < RESYNCS) {
        this.received = error.details.received;
        resyncs += 1;
        continue;
      }
      if (isTransient(answer)) throw answer;
      return this.fail(error, error.code === "UPLOAD_OFFSET_MISMATCH");
    }
  };

  function startUploads(input) {
    var list = section.querySelector("[data-upload-list]");
    var template = document.getElementById("upload-row-template");
    Array.prototype.forEach.call(input.files, function (file) {
      var element = input.closest("[data-upload-row]");
      if (input.dataset.uploadName === undefined) {
        element = template.content.firstElementChild.cloneNode(true);
        element.querySelector("[data-upload-label]").textContent = file.name;
        list.appendChild(element);
      }
      new Upload(element, file, input.dataset.uploadName || file.name).start();
    });
  }

  // A folder: every file under its path inside the chosen folder (the folder's own name dropped, as the
  // portal drops an archive's one top folder), two at a time.
  function startFolder(input) {
    var list = section.querySelector("[data-upload-folder-list]");
    var template = document.getElementById("upload-row-template");
    var queue = Array.prototype.map.call(input.files, function (file) {
      var parts = (file.webkitRelativePath || file.name).split("/");
      var name = parts.length > 1 ? parts.slice(1).join("/") : parts[0];
      var element = template.content.firstElementChild.cloneNode(true);
      element.querySelector("[data-upload-label]").textContent = name;
      list.appendChild(element);
      return new Upload(element, file, name);
    });
    function next() {
      var upload = queue.shift();
      if (!upload) return Promise.resolve();
      upload.start();
      return upload.done.then(next, next);
    }
    next();
    next();
  }

  // An archive: one multipart request with its progress; the portal unpacks it in the background.
  function startArchive(input) {
    var file = input.files[0];
    var element = input.closest(".wizard-upload");
    var progress = element.querySelector("[data-upload-progress]");
    var percent = element.querySelector("[data-upload-percent]");
    var message = element.querySelector("[data-upload-message]");
    message.classList.remove("error");
    if (file.size > maxBytes) {
      message.textContent = file.name + " is " + sizeText(file.size) + ", more than this cluster's limit of " +
        sizeText(maxBytes) + ". (FILE_TOO_LARGE)";
      message.classList.add("error");
      return;
    }
    var body = new FormData();
    body.append("file", file, file.name);
    progress.hidden = false;
    send("POST", input.dataset.archiveUrl, body, {}, function (loaded) {
      var value = Math.floor((loaded / file.size) * 100);
      progress.value = value;
      percent.textContent = value + " %";
    }).then(function (answer) {
      progress.hidden = true;
      percent.textContent = "";
      if (answer.status === 202) {
        message.textContent = file.name + " received: it is unpacked and copied to the cluster.";
        document.body.dispatchEvent(new CustomEvent("upload-done", { bubbles: true }));
        return;
      }
      var error = errorOf(answer);
      message.textContent = error.message + " (" + error.code + ")";
      message.classList.add("error");
    }, function () {
      progress.hidden = true;
      message.textContent = "The connection failed: choose the archive again.";
      message.classList.add("error");
    });
  }

  section.addEventListener("change", function (event) {
    var input = event.target;
    if (input.type !== "file" || !input.files.length) return;
    if (input.dataset.uploadArchive !== undefined) startArchive(input);
    else if (input.dataset.uploadFolder !== undefined) startFolder(input);
    else startUploads(input);
  });
})();
