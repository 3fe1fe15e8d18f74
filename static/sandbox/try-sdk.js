// "Try the SDK": the real analytics.js, loaded with this sandbox as its CDN.
(function () {
  "use strict";

  const root = document.querySelector("[data-try-sdk]");
  if (!root) return;
  const status = document.querySelector("[data-sdk-status]");
  const log = root.querySelector("[data-sdk-log]");
  const historyUrl = root.dataset.historyUrl;

  function say(text, failed) {
    status.textContent = text;
    status.classList.toggle("field-error", Boolean(failed));
  }

  if (!window.AnalyticsNext) {
    say("analytics.js could not be loaded from this sandbox.", true);
    return;
  }

  const analytics = window.AnalyticsNext.AnalyticsBrowser.load({
    writeKey: root.dataset.writeKey,
    cdnURL: window.location.origin,
  });

  analytics
    .then(function () {
      say("analytics.js is ready; each call below is sent to this sandbox.");
      root.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = false;
      });
    })
    .catch(function (error) {
      say("analytics.js failed to load: " + (error && error.message ? error.message : error), true);
    });

  // Parsed JSON from a textarea, or an error naming the field.
  function jsonOf(form, name) {
    const field = form.elements[name];
    const text = field.value.trim();
    if (!text) return {};
    let value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new Error(field.labels[0].textContent + ": " + error.message);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error(field.labels[0].textContent + ": an object is needed, like {\"key\": \"value\"}.");
    }
    return value;
  }

  function text(form, name) {
    return form.elements[name].value.trim();
  }

  const calls = {
    page: function (form) {
      return [
        "page(" + JSON.stringify(text(form, "name")) + ")",
        analytics.page(text(form, "category") || undefined, text(form, "name") || undefined, jsonOf(form, "properties")),
      ];
    },
    track: function (form) {
      return [
        "track(" + JSON.stringify(text(form, "event")) + ")",
        analytics.track(text(form, "event"), jsonOf(form, "properties")),
      ];
    },
    identify: function (form) {
      const userId = text(form, "userId");
      return [
        "identify(" + JSON.stringify(userId) + ")",
        userId ? analytics.identify(userId, jsonOf(form, "traits")) : analytics.identify(jsonOf(form, "traits")),
      ];
    },
    group: function (form) {
      return [
        "group(" + JSON.stringify(text(form, "groupId")) + ")",
        analytics.group(text(form, "groupId"), jsonOf(form, "traits")),
      ];
    },
    alias: function (form) {
      const previousId = text(form, "previousId");
      return [
        "alias(" + JSON.stringify(text(form, "userId")) + ")",
        previousId ? analytics.alias(text(form, "userId"), previousId) : analytics.alias(text(form, "userId")),
      ];
    },
  };

  function entry(label) {
    const item = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = label;
    item.append(code, document.createTextNode(" "));
    const result = document.createElement("span");
    result.className = "muted";
    result.textContent = "sending…";
    item.append(result);
    log.prepend(item);
    return result;
  }

  root.querySelectorAll("form[data-call]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      let label, sent;
      try {
        [label, sent] = calls[form.dataset.call](form);
      } catch (error) {
        const result = entry(form.dataset.call + "()");
        result.className = "field-error";
        result.textContent = "not sent: " + error.message;
        return;
      }
      const result = entry(label);
      sent
        .then(function (context) {
          const messageId = context.event.messageId;
          result.textContent = "sent, messageId ";
          const link = document.createElement("a");
          link.href = historyUrl + "?q=" + encodeURIComponent(messageId);
          link.textContent = messageId;
          link.dataset.messageId = messageId;
          result.append(link);
          result.className = "";
          result.dataset.sent = "true";
        })
        .catch(function (error) {
          result.className = "field-error";
          result.textContent = "failed: " + (error && error.message ? error.message : error);
        });
    });
  });
})();
