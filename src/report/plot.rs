//! Small, dependency-free SVG line charts: demand, forecasts and bands over
//! time. Deterministic output (golden-file friendly), readable in a browser.

use crate::core::time::rfc3339;
use std::fmt::Write;

/// One line of a chart.
pub struct Line<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: &'a [f64],
    /// Stroke width in pixels.
    pub width: f64,
}

/// A shaded band (e.g. an 80% prediction interval).
pub struct Band<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub lo: &'a [f64],
    pub hi: &'a [f64],
}

/// A time-series chart: every line and band shares `times` (epoch seconds).
pub struct Chart<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    pub times: &'a [i64],
    pub lines: Vec<Line<'a>>,
    pub bands: Vec<Band<'a>>,
}

const W: f64 = 1000.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// Longer series are thinned to at most this many points per line (min/max
/// kept per bucket, so peaks stay visible).
const MAX_POINTS: usize = 2_000;

/// The plot area's scales: time to x, value to y.
struct Frame {
    t0: i64,
    t1: i64,
    ymax: f64,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        LEFT + (t - self.t0) as f64 / (self.t1 - self.t0) as f64 * (W - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        TOP + (1.0 - v / self.ymax) * (H - TOP - BOTTOM)
    }
}

impl Chart<'_> {
    /// Render to an SVG document.
    pub fn to_svg(&self) -> String {
        let mut ymax = 0.0f64;
        for l in &self.lines {
            ymax = l
                .values
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(ymax, f64::max);
        }
        for b in &self.bands {
            ymax =
                b.hi.iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .fold(ymax, f64::max);
        }
        let (t0, t1) = match (self.times.first(), self.times.last()) {
            (Some(&a), Some(&b)) if b > a => (a, b),
            (Some(&a), _) => (a, a + 1),
            _ => (0, 1),
        };
        let ticks = Ticks::up_to(ymax.max(1e-9));
        let f = Frame {
            t0,
            t1,
            ymax: ticks.top(),
        };
        let legend = self.legend_rows();
        let height = H + LEGEND_ROW * (legend.len().max(1) - 1) as f64;
        let mut s = String::new();
        self.axes(&f, &ticks, height, &mut s);
        let idx = thin(self.times.len());
        for b in &self.bands {
            self.band(&f, b, &idx, &mut s);
        }
        for l in &self.lines {
            self.line(&f, l, &idx, &mut s);
        }
        legend_svg(&legend, &mut s);
        s.push_str("</svg>\n");
        s
    }

    /// The document's head, title, grid, tick labels and plot frame.
    fn axes(&self, f: &Frame, ticks: &Ticks, height: f64, s: &mut String) {
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
            W / 2.0,
            esc(self.title)
        );
        for k in 0..=ticks.count {
            let v = ticks.step * k as f64;
            let y = f.y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
                W - RIGHT
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                ticks.label(v)
            );
        }
        let (times, label) = time_ticks(f.t0, f.t1);
        for t in times {
            let x = f.x(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/>"##,
                H - BOTTOM
            );
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                H - BOTTOM + 18.0,
                esc(&label(t))
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">{}</text>"#,
            H / 2.0,
            H / 2.0,
            esc(self.y_label)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#888"/>"##,
            W - LEFT - RIGHT,
            H - TOP - BOTTOM
        );
    }

    /// A shaded band between `lo` and `hi` where both are numbers.
    fn band(&self, f: &Frame, b: &Band<'_>, idx: &[usize], s: &mut String) {
        let mut d = String::new();
        let pts: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| b.lo[i].is_finite() && b.hi[i].is_finite())
            .collect();
        for (k, &i) in pts.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if k == 0 { "M" } else { "L" },
                f.x(self.times[i]),
                f.y(b.hi[i])
            );
        }
        for &i in pts.iter().rev() {
            let _ = write!(d, "L{:.1},{:.1} ", f.x(self.times[i]), f.y(b.lo[i]));
        }
        if !pts.is_empty() {
            let _ = writeln!(
                s,
                r#"<path d="{}Z" fill="{}" fill-opacity="0.25" stroke="none"><title>{}</title></path>"#,
                d,
                b.color,
                esc(b.name)
            );
        }
    }

    /// A line, lifting the pen over values that are not numbers.
    fn line(&self, f: &Frame, l: &Line<'_>, idx: &[usize], s: &mut String) {
        let mut d = String::new();
        let mut pen_up = true;
        for &i in idx {
            let v = l.values[i];
            if !v.is_finite() {
                pen_up = true;
                continue;
            }
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if pen_up { "M" } else { "L" },
                f.x(self.times[i]),
                f.y(v)
            );
            pen_up = false;
        }
        let _ = writeln!(
            s,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="{}"><title>{}</title></path>"#,
            d.trim_end(),
            l.color,
            l.width,
            esc(l.name)
        );
    }

    /// The legend's entries, in rows that fit the chart's width: lines
    /// first, then bands.
    fn legend_rows(&self) -> Vec<Vec<(f64, Swatch<'_>)>> {
        let entries = self
            .lines
            .iter()
            .map(|l| Swatch::Line {
                name: l.name,
                color: l.color,
                width: l.width,
            })
            .chain(self.bands.iter().map(|b| Swatch::Band {
                name: b.name,
                color: b.color,
            }));
        let mut rows: Vec<Vec<(f64, Swatch<'_>)>> = vec![Vec::new()];
        let mut x = LEFT;
        for e in entries {
            let w = legend_width(e.name());
            if x + w > W - RIGHT && x > LEFT {
                rows.push(Vec::new());
                x = LEFT;
            }
            rows.last_mut().expect("a row").push((x, e));
            x += w;
        }
        rows
    }
}

/// A legend entry: a line is drawn as a short line of its width, a band as
/// a shaded box, so the two never look alike even in one colour.
enum Swatch<'a> {
    Line {
        name: &'a str,
        color: &'a str,
        width: f64,
    },
    Band {
        name: &'a str,
        color: &'a str,
    },
}

impl Swatch<'_> {
    fn name(&self) -> &str {
        match self {
            Swatch::Line { name, .. } | Swatch::Band { name, .. } => name,
        }
    }
}

/// The room a legend entry takes: the swatch, a gap, the name (at about 7.5
/// pixels a character in a 12-pixel sans-serif font) and a gap.
fn legend_width(name: &str) -> f64 {
    40.0 + 7.5 * name.chars().count() as f64
}

/// Height of one legend row.
const LEGEND_ROW: f64 = 18.0;

/// The legend under the plot, row by row.
fn legend_svg(rows: &[Vec<(f64, Swatch<'_>)>], s: &mut String) {
    for (r, row) in rows.iter().enumerate() {
        let y = H - 16.0 + LEGEND_ROW * r as f64;
        for (x, e) in row {
            match e {
                Swatch::Line { color, width, .. } => {
                    let _ = write!(
                        s,
                        r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="{:.1}"/>"#,
                        y - 4.0,
                        x + 14.0,
                        y - 4.0,
                        width.max(2.0)
                    );
                }
                Swatch::Band { color, .. } => {
                    let _ = write!(
                        s,
                        r#"<rect x="{x:.1}" y="{:.1}" width="14" height="10" fill="{color}" fill-opacity="0.25"/>"#,
                        y - 9.0
                    );
                }
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{y:.1}">{}</text>"#,
                x + 18.0,
                esc(e.name())
            );
        }
    }
}

/// Indices to draw: all of them, or per-bucket first/min/max/last when long.
fn thin(n: usize) -> Vec<usize> {
    if n <= MAX_POINTS {
        return (0..n).collect();
    }
    // Evenly spaced samples; dense enough that peaks stay visible at this width.
    (0..MAX_POINTS)
        .map(|k| k * (n - 1) / (MAX_POINTS - 1))
        .collect()
}

/// The value axis: from 0 in `count` steps of `step`, a round number (1, 2,
/// 2.5 or 5 times a power of ten), up to at least the highest value; every
/// label in one unit (k, M) with as many decimals as the step needs, so that
/// 12.5k is never shown as "12k" next to "25k".
struct Ticks {
    step: f64,
    count: usize,
    unit: f64,
    suffix: &'static str,
    decimals: usize,
}

impl Ticks {
    fn up_to(max: f64) -> Ticks {
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let raw = max / 4.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| s * 4.0 >= max * (1.0 - 1e-12))
            .unwrap_or(10.0 * mag);
        let count = ((max / step) - 1e-9).ceil().max(1.0) as usize;
        let top = step * count as f64;
        let (unit, suffix) = if top >= 1e6 {
            (1e6, "M")
        } else if top >= 1e4 {
            (1e3, "k")
        } else {
            (1.0, "")
        };
        let decimals = (0..=4)
            .find(|&d| {
                let x = step / unit * 10f64.powi(d as i32);
                (x - x.round()).abs() < 1e-6 * x.abs().max(1.0)
            })
            .unwrap_or(4);
        Ticks {
            step,
            count,
            unit,
            suffix,
            decimals,
        }
    }

    fn top(&self) -> f64 {
        self.step * self.count as f64
    }

    fn label(&self, v: f64) -> String {
        if v == 0.0 {
            return "0".into();
        }
        format!("{:.*}{}", self.decimals, v / self.unit, self.suffix)
    }
}

/// Round ticks over `lo..=hi`: 1, 2, 2.5 or 5 times a power of ten apart, at
/// most six, each labelled with the decimals the step needs (for axes that
/// do not start at zero, e.g. a ratio or a percentage).
pub(crate) fn round_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let span = (hi - lo).max(1e-12);
    let mag = 10f64.powf((span / 5.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 5.0 + 1e-9)
        .unwrap_or(10.0 * mag);
    let decimals = (0..=6)
        .find(|&d| {
            let x = step * 10f64.powi(d);
            (x - x.round()).abs() < 1e-6 * x.abs().max(1.0)
        })
        .unwrap_or(6) as usize;
    let first = (lo / step - 1e-9).ceil() as i64;
    (first..)
        .map(|k| k as f64 * step)
        .take_while(|v| *v <= hi + step * 1e-9)
        .map(|v| (v, format!("{v:.decimals$}")))
        .collect()
}

/// Time-axis ticks at round times (whole minutes, hours or days, UTC) no
/// more than six apart over `t0..=t1`, and one label format for all of them:
/// the date for ticks a day or more apart, else month-day and time (time
/// only within one day).
fn time_ticks(t0: i64, t1: i64) -> (Vec<i64>, impl Fn(i64) -> String) {
    const STEPS: [i64; 14] = [
        60,
        300,
        900,
        1_800,
        3_600,
        3 * 3_600,
        6 * 3_600,
        12 * 3_600,
        86_400,
        2 * 86_400,
        7 * 86_400,
        14 * 86_400,
        28 * 86_400,
        91 * 86_400,
    ];
    let span = (t1 - t0).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 6)
        .unwrap_or(span / 6 + 1);
    let first = t0.div_euclid(step) * step + if t0.rem_euclid(step) == 0 { 0 } else { step };
    let ticks: Vec<i64> = (0..)
        .map(|k| first + k * step)
        .take_while(|t| *t <= t1)
        .collect();
    let label = move |t: i64| {
        let s = rfc3339(t);
        if step >= 86_400 {
            s[..10].to_string()
        } else if span > 86_400 {
            format!("{} {}", &s[5..10], &s[11..16])
        } else {
            s[11..16].to_string()
        }
    };
    (ticks, label)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_every_line_and_band_with_a_legend() {
        let times = [0, 60, 120];
        let chart = Chart {
            title: "t <1>",
            y_label: "req/min",
            times: &times,
            lines: vec![Line {
                name: "actual",
                color: "black",
                values: &[1.0, 2.0, 3.0],
                width: 1.0,
            }],
            bands: vec![Band {
                name: "80%",
                color: "blue",
                lo: &[0.5, 1.5, f64::NAN],
                hi: &[1.5, 2.5, f64::NAN],
            }],
        };
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("t &lt;1&gt;"));
        assert!(svg.contains("<title>actual</title>") && svg.contains("<title>80%</title>"));
        assert!(svg.contains(r#"d="M70.0,"#), "{svg}");
    }

    #[test]
    fn value_ticks_are_round_and_labelled_alike() {
        let t = Ticks::up_to(9_000.0);
        assert_eq!((t.step, t.count, t.top()), (2_500.0, 4, 10_000.0));
        let labels: Vec<String> = (0..=t.count).map(|k| t.label(t.step * k as f64)).collect();
        assert_eq!(labels, ["0", "2.5k", "5.0k", "7.5k", "10.0k"]);
        let t = Ticks::up_to(47_000.0);
        assert_eq!((t.step, t.count, t.top()), (20_000.0, 3, 60_000.0));
        assert_eq!(t.label(40_000.0), "40k");
        let t = Ticks::up_to(380.0);
        assert_eq!((t.step, t.count), (100.0, 4));
        assert_eq!(t.label(300.0), "300");
        let t = Ticks::up_to(0.9);
        assert_eq!(t.label(0.25), "0.25");
        assert_eq!(Ticks::up_to(2.4e6).label(1e6), "1M");
        assert_eq!(Ticks::up_to(1.8e6).label(1.5e6), "1.5M");
        // A flat or empty chart still gets an axis.
        assert_eq!(Ticks::up_to(0.0).count, 4);
    }

    #[test]
    fn round_ticks_of_a_ratio_axis() {
        let t: Vec<String> = round_ticks(0.95, 2.41).into_iter().map(|x| x.1).collect();
        assert_eq!(t, ["1.0", "1.5", "2.0"]);
        let t: Vec<String> = round_ticks(0.0, 1.05).into_iter().map(|x| x.1).collect();
        assert_eq!(t, ["0.00", "0.25", "0.50", "0.75", "1.00"]);
    }

    #[test]
    fn time_ticks_fall_on_round_times_with_one_format() {
        // 1998-06-13 09:45 .. 1998-07-26 22:00: weekly ticks, dates only.
        let (t, label) = time_ticks(897_731_100, 901_490_400);
        assert!(t.len() <= 7 && t.len() >= 4, "{t:?}");
        assert!(t.iter().all(|x| x % 86_400 == 0));
        assert_eq!(label(t[0]).len(), 10);
        // Six hours: hourly, time only.
        let (t, label) = time_ticks(897_731_100, 897_731_100 + 6 * 3_600);
        assert!(t.iter().all(|x| x % 3_600 == 0));
        assert_eq!(label(t[0]), "10:00");
    }

    #[test]
    fn a_long_legend_wraps_inside_the_chart_and_the_chart_grows() {
        let times = [0, 60];
        let names = [
            "demand",
            "planned demand (predictive)",
            "predictive capacity",
            "reactive_threshold capacity",
            "target_tracking capacity",
            "seasonal_naive capacity",
            "oracle capacity",
        ];
        let lines = names
            .iter()
            .map(|n| Line {
                name: n,
                color: "red",
                values: &[1.0, 2.0],
                width: 1.0,
            })
            .collect();
        let chart = Chart {
            title: "t",
            y_label: "y",
            times: &times,
            lines,
            bands: vec![],
        };
        let rows = chart.legend_rows();
        assert!(rows.len() >= 2);
        let n: usize = rows.iter().map(Vec::len).sum();
        assert_eq!(n, names.len());
        for row in &rows {
            let (x, e) = row.last().unwrap();
            assert!(x + legend_width(e.name()) <= W, "{}", e.name());
        }
        let svg = chart.to_svg();
        assert!(svg.contains(&format!(
            r#"height="{}""#,
            H + LEGEND_ROW * (rows.len() - 1) as f64
        )));
        assert!(svg.contains(">oracle capacity</text>"));
    }

    #[test]
    fn long_series_are_thinned() {
        assert_eq!(thin(10).len(), 10);
        let t = thin(100_000);
        assert_eq!(t.len(), MAX_POINTS);
        assert_eq!((t[0], *t.last().unwrap()), (0, 99_999));
    }
}
