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
        let f = Frame {
            t0,
            t1,
            ymax: nice_ceiling(ymax.max(1e-9)),
        };
        let mut s = String::new();
        self.axes(&f, &mut s);
        let idx = thin(self.times.len());
        for b in &self.bands {
            self.band(&f, b, &idx, &mut s);
        }
        for l in &self.lines {
            self.line(&f, l, &idx, &mut s);
        }
        self.legend(&mut s);
        s.push_str("</svg>\n");
        s
    }

    /// The document's head, title, grid, tick labels and plot frame.
    fn axes(&self, f: &Frame, s: &mut String) {
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
            W / 2.0,
            esc(self.title)
        );
        for k in 0..=4 {
            let v = f.ymax * k as f64 / 4.0;
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
                fmt_num(v)
            );
        }
        for k in 0..=4 {
            let t = f.t0 + (f.t1 - f.t0) * k / 4;
            let label = rfc3339(t)
                .replace('T', " ")
                .trim_end_matches(":00Z")
                .to_string();
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                f.x(t),
                H - BOTTOM + 18.0,
                esc(&label)
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

    /// One swatch and name per line and band, left to right under the plot.
    fn legend(&self, s: &mut String) {
        let mut x = LEFT;
        let y = H - 16.0;
        for (name, color) in self
            .lines
            .iter()
            .map(|l| (l.name, l.color))
            .chain(self.bands.iter().map(|b| (b.name, b.color)))
        {
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="14" height="8" fill="{color}"/><text x="{:.1}" y="{y:.1}">{}</text>"#,
                y - 8.0,
                x + 18.0,
                esc(name)
            );
            x += 30.0 + 7.0 * name.len() as f64;
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

fn nice_ceiling(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
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
    fn long_series_are_thinned() {
        assert_eq!(thin(10).len(), 10);
        let t = thin(100_000);
        assert_eq!(t.len(), MAX_POINTS);
        assert_eq!((t[0], *t.last().unwrap()), (0, 99_999));
    }
}
