// The support desk's KPI charts, drawn by uPlot (static/vendor/uplot, vendored from npm). The
// numbers come from the page (#kpi-data); each chart has the same numbers in a table beside it.
(function () {
  'use strict';
  var source = document.getElementById('kpi-data');
  if (!source || !window.uPlot) return;
  var data = JSON.parse(source.textContent);
  var charts = data.charts;
  var labels = data.labels;

  function width(el) {
    return Math.max(260, Math.floor(el.getBoundingClientRect().width));
  }

  function bars(el, names, values, label, colour) {
    if (!el || !names.length) return;
    var xs = names.map(function (_name, i) { return i; });
    new window.uPlot({
      width: width(el),
      height: 240,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, range: [-0.6, names.length - 0.4] }, y: { range: [0, null] } },
      axes: [
        {
          splits: function () { return xs; },
          values: function (_u, splits) {
            return splits.map(function (i) {
              var name = names[i] || '';
              return name.length > 12 ? name.slice(0, 11) + '…' : name;
            });
          },
          rotate: names.length > 6 ? -40 : 0,
          size: names.length > 6 ? 70 : 40,
        },
        {},
      ],
      series: [
        {},
        {
          label: label,
          fill: colour,
          stroke: colour,
          paths: window.uPlot.paths.bars({ size: [0.7, 60] }),
          points: { show: false },
        },
      ],
    }, [xs, values], el);
  }

  var daily = document.getElementById('chart-daily');
  if (daily && charts.daily.x.length) {
    var xs = charts.daily.x.map(function (day) { return Date.parse(day + 'T00:00:00Z') / 1000; });
    new window.uPlot({
      width: width(daily),
      height: 240,
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'); },
      scales: { y: { range: [0, null] } },
      series: [
        {},
        { label: labels.ordered, stroke: '#0969da', width: 2 },
        { label: labels.backordered, stroke: '#bc4c00', width: 2, fill: 'rgba(188,76,0,.12)' },
      ],
    }, [xs, charts.daily.ordered, charts.daily.backordered], daily);
  }
  bars(document.getElementById('chart-cycle'), charts.cycle.labels, charts.cycle.lines, labels.lines, '#8250df');
  bars(document.getElementById('chart-owed'), charts.owed.labels, charts.owed.units, labels.owed, '#bc4c00');
})();
