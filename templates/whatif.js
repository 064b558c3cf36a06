// The what-if panel of summary.html: one team's month recomputed for a
// model move, a chargeback model and a cache hit rate, with the arithmetic
// of `chargeback compare` (README › What-if in the browser). It reads only
// #whatif-data, the blob the run embedded; it loads nothing and sends
// nothing, so the page works from a file or an email attachment.
//
// Money is never a Number: every decimal string of the blob is a BigInt
// count of 10^-42 units, exact for every decimal the blob can hold (28
// places at most) and for its products with a whole percent. Amounts of
// minor units (cents) are plain BigInts; roundings are spelled out below.
// Inlined by Handlebars as a partial: it must never contain two opening
// braces in a row, nor the closing tag of a script.
(function () {
  "use strict";
  const PLACES = 42;
  const ONE = 10n ** BigInt(PLACES);
  const SPLIT = 10n ** 12n; // the places pool parts are cut to (money.rs SPLIT_PLACES)
  const $ = (id) => document.getElementById(id);

  // "-12.345" → BigInt of 10^-42 units; anything else is a broken blob.
  function dec(text) {
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text));
    if (!m || (m[3] || "").length > PLACES - 2) throw new Error("not an exact decimal: " + text);
    const v = BigInt(m[2] + (m[3] || "").padEnd(PLACES, "0"));
    return m[1] ? -v : v;
  }
  const abs = (x) => (x < 0n ? -x : x);
  const sum = (xs) => xs.reduce((s, x) => s + x, 0n);
  // n / d rounded half away from zero: round_line of money.rs.
  function roundDiv(n, d) {
    if (d < 0n) [n, d] = [-n, -d];
    const q = (2n * abs(n) + d) / (2n * d);
    return n < 0n ? -q : q;
  }
  // n / d rounded toward −∞ (d > 0): BigInt division alone truncates toward zero.
  function floorDiv(n, d) {
    const q = n / d;
    return n % d !== 0n && n < 0n ? q - 1n : q;
  }

  // Until the script has run, the panel shows a note that it needs one;
  // a blob that cannot be read says so there instead.
  const status = document.querySelector("#whatif-panel .whatif-noscript");
  let data;
  try {
    data = JSON.parse($("whatif-data").textContent);
  } catch (e) {
    status.textContent = "The what-if data of this page cannot be read: " + e.message;
    return;
  }
  const UNIT = 10n ** BigInt(data.scale);
  const cents = (x) => roundDiv(x * UNIT, ONE); // an exact amount, rounded to minor units

  // largest_remainder of money.rs: `amounts` are exact values of n / den;
  // each is floored to the minor unit, then the units still missing to
  // `target` (minor units) go out evenly (Euclidean) and one more each to
  // the largest remainders, ties to the lower index.
  function largestRemainder(amounts, den, target) {
    const floors = amounts.map((a) => floorDiv(a * UNIT, den));
    const rest = amounts.map((a, i) => a * UNIT - floors[i] * den);
    const n = BigInt(amounts.length);
    if (n === 0n) return floors;
    const missing = target - sum(floors);
    const each = floorDiv(missing, n);
    const extra = Number(missing - each * n); // 0 ≤ extra < n: a count, not money
    const order = amounts.map((_, i) => i);
    order.sort((a, b) => (rest[a] === rest[b] ? a - b : rest[b] > rest[a] ? 1 : -1));
    const out = floors.map((f) => f + each);
    order.slice(0, extra).forEach((i) => (out[i] += 1n));
    return out;
  }

  const NO_MOVE = { moved_billed: "0", moved_estimated: "0", new: "0", cache_from_billed: "0", cache_from_estimated: "0", cache_to: "0" };

  // Every party's usage cost (minor units, by team id; null is unattributed)
  // once team `t` moves cells per `m`, at a cache hit rate of `pct` percent.
  function usageAfter(t, m, pct) {
    const h = (x) => (x * BigInt(pct)) / 100n; // exact: x has at least two spare places
    const saveB = dec(t.cache.billed) - dec(m.cache_from_billed);
    const saveE = dec(t.cache.estimated) - dec(m.cache_from_estimated) + dec(m.cache_to);
    const exact = data.parties.map((p) =>
      p.team !== t.id ? dec(p.exact)
        : dec(p.exact) - dec(m.moved_billed) - dec(m.moved_estimated) + dec(m.new) - h(saveB + saveE));
    const billed = dec(data.billed_exact) - dec(m.moved_billed) - h(saveB);
    const estimated = dec(data.estimated_exact) - dec(m.moved_estimated) + dec(m.new) - h(saveE);
    // The month's two totals round once each, as attribution rounds them.
    const usage = largestRemainder(exact, ONE, cents(billed) + cents(estimated));
    return new Map(data.parties.map((p, i) => [p.team, usage[i]]));
  }

  // Σ lines of terms `T` on usage `u` (minor units), one rounding per line.
  function termLines(T, u, tokens) {
    const line = (rate) => roundDiv(u * dec(rate), ONE); // round(u × rate)
    let lines = 0n;
    if (T.model === "cost_plus") lines += line(T.markup);
    if (T.model === "tiered") {
      if (T.tier_mode === "graduated") {
        // Band k holds the tokens above the previous bound up to its own
        // (chargeback.rs graduated_bands); its line is round(u × band/tokens
        // × markup) computed as one exact fraction.
        let lower = 0n;
        for (const tier of T.tiers) {
          const upper = tier.up_to_mtokens == null ? null : BigInt(tier.up_to_mtokens) * 1000000n;
          if (tokens > lower) {
            const band = (upper === null || tokens < upper ? tokens : upper) - lower;
            lines += roundDiv(u * band * dec(tier.markup), tokens * ONE);
          }
          if (upper === null || tokens <= upper) break;
          lower = upper;
        }
      } else {
        const tier = T.tiers.find((x) => x.up_to_mtokens == null || tokens <= BigInt(x.up_to_mtokens) * 1000000n) || T.tiers[T.tiers.length - 1];
        lines += line(tier.markup);
      }
      lines += line(T.platform_fee_rate);
    }
    if (T.model === "value_based") lines += -u + cents(dec(T.value)); // the usage is offset
    return lines + cents(dec(T.fixed_fee));
  }

  // The team's share of a proportional pool, re-split by the new usage
  // (pools.rs): parts cut toward zero at 12 places, the cut's residual to
  // the largest part, then largest remainder to the pool's cents.
  function poolShare(pool, usage, id) {
    const at = pool.teams.indexOf(id);
    if (at < 0) return 0n;
    let w = pool.teams.map((c) => { const u = usage.get(c) || 0n; return u > 0n ? u : 0n; });
    if (w.every((x) => x === 0n)) w = w.map(() => 1n); // no usage to weigh by: even
    const amount = cents(dec(pool.amount));
    const total = amount * (SPLIT / UNIT); // the pool in 10^-12 units
    const parts = w.map((x) => (total * x) / sum(w)); // BigInt `/` truncates toward zero
    let big = 0;
    parts.forEach((p, i) => { if (abs(p) > abs(parts[big])) big = i; });
    parts[big] += total - sum(parts);
    return largestRemainder(parts, SPLIT, amount)[at];
  }

  // The whole choice → the numbers the panel shows (minor units).
  function compute(t, fromKey, toKey, termsKey, pct) {
    const from = t.from.find((f) => f.key === fromKey);
    const m = from && from.to[toKey] ? from.to[toKey] : NO_MOVE;
    const usage = usageAfter(t, m, pct);
    const u = usage.get(t.id) || 0n; // a team not among the parties has none
    let total = u + termLines(t.terms[termsKey], u, BigInt(t.tokens)) + cents(dec(t.fixed));
    for (const pool of data.pools) total += poolShare(pool, usage, t.id);
    const current = cents(dec(t.current.total));
    return { current, u, total, delta: total - current };
  }

  // Minor units → "1,234.56" (`sign` puts a + on positive amounts).
  function money(c, sign) {
    const s = abs(c).toString().padStart(data.scale + 1, "0");
    const int = s.slice(0, s.length - data.scale).replace(/\B(?=(\d{3})+$)/g, ",");
    const frac = data.scale > 0 ? "." + s.slice(s.length - data.scale) : "";
    return (c < 0n ? "-" : sign && c > 0n ? "+" : "") + int + frac;
  }
  const plain = (c) => money(c, false).replace(/,/g, "");
  function show(id, text, value, cls) {
    const el = $(id);
    el.textContent = text;
    el.dataset.value = value; // the amount without separators, for a test or a copy
    if (cls !== undefined) el.className = cls;
  }

  function option(select, value, label) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    select.appendChild(o);
  }
  const team = () => data.teams.find((t) => t.id === $("whatif-team").value);
  const modelLabel = (key) => {
    const m = data.models.find((x) => x.key === key);
    return m ? m.provider + " " + m.model + (m.tier ? " (" + m.tier + ")" : "") : key;
  };

  // The choices of a team: its models to move from, its chargeback models.
  function fillTeam() {
    const t = team();
    $("whatif-from").replaceChildren();
    option($("whatif-from"), "", "no change");
    t.from.forEach((f) => option($("whatif-from"), f.key, f.label));
    $("whatif-terms").replaceChildren();
    Object.keys(t.terms).forEach((k) => option($("whatif-terms"), k, t.terms[k].label));
    fillTo();
  }
  function fillTo() {
    const from = team().from.find((f) => f.key === $("whatif-from").value);
    $("whatif-to").replaceChildren();
    if (!from) option($("whatif-to"), "", "—");
    else Object.keys(from.to).forEach((k) => option($("whatif-to"), k, modelLabel(k)));
    $("whatif-to").disabled = !from;
  }

  function update() {
    const pct = Number($("whatif-cache").value); // a whole percent 0–100 from the range
    $("whatif-cache-shown").textContent = pct + "%";
    try {
      const r = compute(team(), $("whatif-from").value, $("whatif-to").value, $("whatif-terms").value, pct);
      show("whatif-current", money(r.current), plain(r.current));
      show("whatif-usage", money(r.u), plain(r.u));
      show("whatif-total", money(r.total), plain(r.total));
      const dir = r.delta > 0n ? "up" : r.delta < 0n ? "down" : ""; // a cost up is bad news
      show("whatif-delta", money(r.delta, true), plain(r.delta), dir);
      if (r.current === 0n) show("whatif-delta-pct", "—", "", "");
      else {
        // delta / current × 100, half away from zero to one place.
        const tenths = roundDiv(r.delta * 1000n, r.current);
        const pctText = (tenths < 0n ? "-" : "") + (abs(tenths) / 10n) + "." + (abs(tenths) % 10n);
        show("whatif-delta-pct", (tenths > 0n ? "+" : "") + pctText + "%", pctText, dir);
      }
      $("whatif-error").textContent = "";
    } catch (e) {
      for (const id of ["whatif-current", "whatif-usage", "whatif-total", "whatif-delta", "whatif-delta-pct"]) show(id, "—", "", "");
      $("whatif-error").textContent = "The what-if data of this page cannot be read: " + e.message;
    }
  }

  if (data.teams.length === 0) {
    status.textContent = "No team was invoiced this month: there is nothing to choose.";
    return;
  }
  data.teams.forEach((t) => option($("whatif-team"), t.id, t.name));
  document.querySelectorAll(".whatif-currency").forEach((el) => (el.textContent = data.currency));
  fillTeam();
  $("whatif-team").addEventListener("change", () => { fillTeam(); update(); });
  $("whatif-from").addEventListener("change", () => { fillTo(); update(); });
  for (const id of ["whatif-to", "whatif-terms", "whatif-cache"]) {
    $(id).addEventListener("input", update);
    $(id).addEventListener("change", update);
  }
  $("whatif-panel").classList.add("ready"); // shows the controls, hides the no-script note
  update();
})();
