// Draws the dashboard's blocks-per-day chart with the vendored Chart.js; the data is in the page.
document.addEventListener("DOMContentLoaded", function () {
  var canvas = document.getElementById("blocks-chart");
  var source = document.getElementById("blocks-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: data.series.map(function (s) { return Object.assign({ maxBarThickness: 48 }, s); }) },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }
    }
  });
});
