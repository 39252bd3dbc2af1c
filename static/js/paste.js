// Aisle Keys: "paste from onboarding e-mail" on the package form.
//
// Progressive enhancement only: the server reads the same box when the form is saved
// (onboarding/services/paste.py), so without this script nothing is lost. With it, the lead sees
// the fields filled the moment they paste. This is a port of paste.py; tests/e2e/test_paste_js.py
// runs both on the same examples. Nothing here sends anything anywhere or logs a value.
(function () {
  "use strict";

  var LABELS = {
    client_id: "client ID",
    client_secret: "client secret",
    username: "user name",
    password: "password",
    company_id: "company ID",
    location_id: "location ID"
  };
  var ORDER = ["client_id", "client_secret", "username", "password", "company_id", "location_id"];
  var KEYS = {
    clientid: "client_id", clientsecret: "client_secret", username: "username", user: "username",
    password: "password", companyid: "company_id", locationid: "location_id"
  };
  var SUFFIXES = ["clientsecret", "clientid", "username", "password", "companyid", "locationid"];
  var DATA_OPTIONS = {
    "-d": false, "--data": false, "--data-raw": false, "--data-ascii": false,
    "--data-binary": false, "--data-urlencode": true
  };
  var MAX_PASTE_CHARS = 50000;
  var CONTINUATION = /[\\^`][ \t]*\r?\n/g;
  var CURL_LINE = /^\s*(?:[$>]\s*)?curl(?:\.exe)?\s+/i;
  var CURL_ANYWHERE = /(?:^|\s)curl(?:\.exe)?\s/i;

  function PasteError(message) { this.message = message; }

  function fieldFor(key) {
    var normal = String(key).toLowerCase().replace(/[^a-z0-9]/g, "");
    if (Object.prototype.hasOwnProperty.call(KEYS, normal)) { return KEYS[normal]; }
    for (var i = 0; i < SUFFIXES.length; i++) {
      var suffix = SUFFIXES[i];
      if (normal.length >= suffix.length &&
          normal.slice(normal.length - suffix.length) === suffix) { return KEYS[suffix]; }
    }
    return null;
  }

  function usable(value) {
    if (value === null || value === undefined || typeof value === "object" ||
        typeof value === "boolean") { return null; }
    var text = String(value);
    var trimmed = text.trim();
    if (!trimmed || /^\{\{[^{}]*\}\}$/.test(trimmed)) { return null; }
    return text;
  }

  function fromPairs(pairs) {
    var found = {};
    pairs.forEach(function (pair) {
      var name = fieldFor(pair[0]);
      var value = usable(pair[1]);
      if (name && value !== null && !Object.prototype.hasOwnProperty.call(found, name)) {
        found[name] = value;
      }
    });
    return found;
  }

  // Like Python's urllib.parse.unquote_plus: %XX as UTF-8 bytes, bad sequences left as written.
  function unquotePlus(text) {
    text = text.replace(/\+/g, " ");
    return text.replace(/(?:%[0-9a-fA-F]{2})+/g, function (run) {
      var bytes = new Uint8Array(run.length / 3);
      for (var i = 0; i < bytes.length; i++) { bytes[i] = parseInt(run.substr(i * 3 + 1, 2), 16); }
      return new TextDecoder("utf-8").decode(bytes);
    });
  }

  function parseQsl(text) {
    var pairs = [];
    text.split("&").forEach(function (piece) {
      if (!piece) { return; }
      var at = piece.indexOf("=");
      var name = at < 0 ? piece : piece.slice(0, at);
      var value = at < 0 ? "" : piece.slice(at + 1);
      pairs.push([unquotePlus(name), unquotePlus(value)]);
    });
    return pairs;
  }

  function postmanPairs(doc) {
    var items = doc;
    if (doc && typeof doc === "object" && !Array.isArray(doc)) {
      if ("values" in doc) {
        items = doc.values;
      } else if ("variable" in doc) {
        items = doc.variable;
      } else {
        return Object.keys(doc).filter(function (k) {
          return doc[k] === null || typeof doc[k] !== "object";
        }).map(function (k) { return [k, doc[k]]; });
      }
    }
    if (!Array.isArray(items)) { return []; }
    var entries = items.filter(function (item) {
      return item && typeof item === "object" && !Array.isArray(item) && "key" in item;
    });
    var enabled = entries.filter(function (item) { return item.enabled !== false; });
    var disabled = entries.filter(function (item) { return item.enabled === false; });
    return enabled.concat(disabled).map(function (item) { return [String(item.key), item.value]; });
  }

  function parseJson(text) {
    var doc;
    try { doc = JSON.parse(text); } catch (e) {
      throw new PasteError("The pasted text starts like JSON but is not complete JSON: export " +
        "the Postman environment again and paste the whole file.");
    }
    return fromPairs(postmanPairs(doc));
  }

  function commandLine(text) {
    var joined = text.replace(CONTINUATION, " ")
      .replace(/[\u2018\u2019]/g, "'").replace(/[\u201c\u201d]/g, "\"");
    var lines = joined.split(/\r?\n/);
    for (var i = 0; i < lines.length; i++) {
      if (CURL_LINE.test(lines[i])) { return lines[i].replace(CURL_LINE, "curl "); }
    }
    return lines.filter(function (line) { return CURL_ANYWHERE.test(line); })[0] || "";
  }

  // POSIX words as Python's shlex.split makes them (in double quotes, \ escapes only " and \).
  function shellWords(s) {
    var words = [];
    var current = null;
    var i = 0;
    var unclosed = "A quote in the pasted command is not closed: copy the whole cURL command, " +
      "from curl to the last quote.";
    while (i < s.length) {
      var c = s[i];
      if (c === "'") {
        var end = s.indexOf("'", i + 1);
        if (end < 0) { throw new PasteError(unclosed); }
        current = (current || "") + s.slice(i + 1, end);
        i = end + 1;
      } else if (c === "\"") {
        current = current || "";
        i++;
        while (i < s.length && s[i] !== "\"") {
          if (s[i] === "\\" && i + 1 < s.length && (s[i + 1] === "\"" || s[i + 1] === "\\")) {
            current += s[i + 1];
            i += 2;
          } else {
            current += s[i];
            i++;
          }
        }
        if (i >= s.length) { throw new PasteError(unclosed); }
        i++;
      } else if (c === "\\") {
        if (i + 1 >= s.length) { throw new PasteError(unclosed); }
        current = (current || "") + s[i + 1];
        i += 2;
      } else if (/\s/.test(c)) {
        if (current !== null) { words.push(current); current = null; }
        i++;
      } else {
        current = (current || "") + c;
        i++;
      }
    }
    if (current !== null) { words.push(current); }
    return words;
  }

  function optionName(word) {
    if (word.slice(0, 2) === "--") { return word.split("=")[0]; }
    if (word.slice(0, 2) === "-d" || word.slice(0, 2) === "-u") { return word.slice(0, 2); }
    return word;
  }

  function dataPairs(data, curlEncodes) {
    if (!curlEncodes) { return parseQsl(data); }
    if (data[0] === "@" || data.indexOf("=") < 0) { return []; }
    var at = data.indexOf("=");
    var name = data.slice(0, at);
    return name && name.indexOf("@") < 0 ? [[name, data.slice(at + 1)]] : [];
  }

  // Python's urlsplit refuses a host with an unbalanced "[" or "]" (brackets mark an IPv6
  // address), so the server refuses such a paste: refuse it here too, in the same words.
  function checkUrl(word) {
    var match = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(word);
    var netloc = match ? match[1] : "";
    if ((netloc.indexOf("[") >= 0) !== (netloc.indexOf("]") >= 0)) {
      throw new PasteError("An address in the pasted command is not a valid URL: copy the " +
        "whole cURL command again, as it is in the e-mail.");
    }
  }

  function environmentOf(url) {
    var match = /^[a-z][a-z0-9+.-]*:\/\/([^/?#:@]+)/i.exec(url);
    var host = match ? match[1].toLowerCase() : "";
    if (host.slice(-".iqmetrix.net".length) !== ".iqmetrix.net") { return null; }
    var service = host.split(".")[0];
    if (service === "accounts") { return "production"; }
    if (service.indexOf("accounts") === 0) { return "sandbox"; }
    return null;
  }

  function parseCurl(text) {
    var words = shellWords(commandLine(text));
    var pairs = [];
    var environment = null;
    var companyFromUrl = null;
    var i = 0;
    while (i < words.length) {
      var word = words[i];
      var option = optionName(word);
      if (Object.prototype.hasOwnProperty.call(DATA_OPTIONS, option) ||
          option === "-u" || option === "--user") {
        var value;
        if (word !== option) {
          value = word.slice(option.length).replace(/^=/, "");
          i += 1;
        } else {
          value = i + 1 < words.length ? words[i + 1] : null;
          i += 2;
        }
        if (value === null) { continue; }
        if (Object.prototype.hasOwnProperty.call(DATA_OPTIONS, option)) {
          pairs = pairs.concat(dataPairs(value, DATA_OPTIONS[option]));
        } else if (value.indexOf(":") >= 0) {
          var colon = value.indexOf(":");
          pairs.push(["client_id", value.slice(0, colon)], ["client_secret", value.slice(colon + 1)]);
        }
        continue;
      }
      if (word.indexOf("://") >= 0) {
        checkUrl(word);
        environment = environment || environmentOf(word);
        var company = /\/companies\((\d+)\)/i.exec(word);
        if (company && companyFromUrl === null) { companyFromUrl = company[1]; }
        var q = word.indexOf("?");
        if (q >= 0) { pairs = pairs.concat(parseQsl(word.slice(q + 1).split("#")[0])); }
      }
      i += 1;
    }
    var found = fromPairs(pairs);
    if (companyFromUrl && !("company_id" in found)) { found.company_id = companyFromUrl; }
    return { found: found, environment: environment };
  }

  function parseFormBody(text) {
    var body = text.trim().replace(/^['"]+|['"]+$/g, "");
    if (body.indexOf("=") < 0 || /\s/.test(body)) { return {}; }
    return fromPairs(parseQsl(body));
  }

  // As in paste.py: matched against a line already trimmed and at most MAX_LABELLED_LINE_CHARS
  // long, with one way to read each run of spaces. Two "\s*" either side of an optional bullet,
  // or a lazy value before "\s*$", made the engine try every split of a run of spaces: quadratic
  // in its length.
  var LABELLED = /^(?:[-*\u2022]\s*)?([A-Za-z][A-Za-z _-]{1,30}?)\s*[:=]\s*(\S.*)$/;
  var MAX_LABELLED_LINE_CHARS = 1000;
  // The line breaks of Python's str.splitlines, so both sides cut (and measure) the same lines.
  var LINE_BREAKS = /\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/;

  // Length in code points, as Python's len() counts it: .length counts an emoji as two.
  function codePoints(text) {
    return text.length <= MAX_LABELLED_LINE_CHARS ? text.length : Array.from(text).length;
  }

  function parseLabelled(text) {
    var pairs = [];
    text.split(LINE_BREAKS).forEach(function (line) {
      if (codePoints(line) > MAX_LABELLED_LINE_CHARS) { return; }
      var match = LABELLED.exec(line.trim());
      if (!match) { return; }
      var normal = match[1].toLowerCase().replace(/[^a-z0-9]/g, "");
      if (Object.prototype.hasOwnProperty.call(KEYS, normal)) { pairs.push([match[1], match[2]]); }
    });
    return fromPairs(pairs);
  }

  // Half of a UTF-16 pair with no partner, as JSON.parse makes of "\ud800". The browser would
  // quietly send it as U+FFFD, a value nobody gave; the server refuses it, and so does this.
  var LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/;

  function refuseInvalidUnicode(values) {
    ORDER.forEach(function (name) {
      if (values[name] !== undefined && LONE_SURROGATE.test(values[name])) {
        throw new PasteError("The " + LABELS[name] + " in the pasted text is not valid " +
          "Unicode: it holds half of a character pair (an escape from \\ud800 to \\udfff). " +
          "Type the " + LABELS[name] + " in by hand, or export the Postman environment again.");
      }
    });
  }

  // {values: {field: value}, environment, error}
  function parse(text) {
    text = (text || "").trim();
    try {
      if (!text) { throw new PasteError("Nothing was pasted."); }
      if (text.length > MAX_PASTE_CHARS) {
        throw new PasteError("The pasted text is too long: paste only the cURL command or the " +
          "Postman environment.");
      }
      var found;
      var environment = null;
      if (text[0] === "{" || text[0] === "[") {
        found = parseJson(text);
      } else if (CURL_ANYWHERE.test(text)) {
        var curl = parseCurl(text);
        found = curl.found;
        environment = curl.environment;
      } else {
        found = parseFormBody(text);
        if (!Object.keys(found).length) { found = parseLabelled(text); }
      }
      var values = {};
      ORDER.forEach(function (name) {
        if (found[name] !== undefined && found[name] !== "") { values[name] = found[name]; }
      });
      if (values.company_id !== undefined) { values.company_id = values.company_id.trim(); }
      refuseInvalidUnicode(values);
      if (!Object.keys(values).length) {
        throw new PasteError("Nothing in the pasted text looks like an onboarding package: " +
          "paste the whole cURL command from the e-mail (curl -X POST \u2026 -d " +
          "'grant_type=password&client_id=\u2026') or the Postman environment file.");
      }
      return { values: values, environment: environment, error: null };
    } catch (e) {
      if (e instanceof PasteError) { return { values: {}, environment: null, error: e.message }; }
      throw e;
    }
  }

  function labels(names) {
    var words = names.map(function (name) { return LABELS[name] || name; });
    if (words.length <= 1) { return words.join(""); }
    return words.slice(0, -1).join(", ") + " and " + words[words.length - 1];
  }

  function formEnvironment(form) {
    var select = form.querySelector("select[name=environment]");
    if (select) { return select.value; }
    return form.getAttribute("data-environment");
  }

  function fill(box) {
    var form = box.form;
    var status = document.getElementById(box.getAttribute("data-paste-status"));
    if (!box.value.trim()) {
      if (status) { status.textContent = ""; }
      return;
    }
    var result = parse(box.value);
    var filled = [];
    var kept = [];
    Object.keys(result.values).forEach(function (name) {
      var input = form.elements.namedItem(name);
      if (!input || !("value" in input)) { return; }
      // Only empty fields, as the help text promises and as the server's merge does without
      // this script (dashboard/forms.py, _merge_paste): what the lead typed wins.
      if (!input.value.trim()) {
        input.value = result.values[name];
        filled.push(name);
      } else if (input.value !== result.values[name]) {
        kept.push(name);
      }
    });
    var text;
    if (result.error) {
      text = result.error;
    } else {
      var said = [];
      if (filled.length) { said.push("Filled from the paste: " + labels(filled) + "."); }
      // Named, never the values: the status is on screen and read aloud.
      if (kept.length) {
        said.push("Kept what you typed in the " + labels(kept) + ": the paste holds " +
          (kept.length > 1 ? "other values" : "another value") + ". To take the pasted " +
          (kept.length > 1 ? "ones" : "one") + ", empty the field and paste again.");
      }
      if (!said.length) { said.push("The fields already hold what the paste holds."); }
      if (filled.length) { said.push("Check them, then save."); }
      text = said.join(" ");
      // The pasted text holds the secrets in the clear, where the fields mask them: it is not
      // left on screen (or sent again with the form). Everything in it is in a field now or
      // was turned down for a typed value, so the server's merge would find nothing to fill.
      box.value = "";
      text += " The pasted text was cleared so its secrets are not left on screen.";
      var env = formEnvironment(form);
      if (result.environment && env && result.environment !== env) {
        text += " Note: the pasted command is for the " +
          (result.environment === "production" ? "Production" : "Sandbox") +
          " accounts host, but this package is for " +
          (env === "production" ? "Production" : "Sandbox") + ".";
      }
    }
    if (status) {
      status.textContent = text;
      status.classList.toggle("paste-status-error", Boolean(result.error));
    }
  }

  window.AisleKeysPaste = { parse: parse };

  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll("textarea[data-paste-status]");
    Array.prototype.forEach.call(boxes, function (box) {
      // A paste or a drop is read at once: it arrives whole. Typed text is read only when the
      // lead leaves the box (change): read at each keystroke, "Client ID: a" would fill the
      // field with "a" and clear the box under the lead's fingers. (Saving reads the box too.)
      box.addEventListener("input", function (event) {
        if (event.inputType === "insertFromPaste" || event.inputType === "insertFromDrop") {
          fill(box);
        }
      });
      box.addEventListener("change", function () { fill(box); });
      // A lead who pastes while the page is still loading (a slow link) gave their input event
      // before this listener existed; read what is already in the box so the paste is not ignored.
      if (box.value.trim()) { fill(box); }
    });
  });
})();
