//! Plain-text tables with aligned columns.

/// Render rows as an aligned table; the first row is the header. Numbers
/// (cells that parse as f64, optionally with a trailing '%') are right-aligned,
/// and so is the header of a column that holds only numbers.
pub fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    // A column whose body cells are all numbers is right-aligned, header included.
    let is_num = |c: &String| c.trim_end_matches('%').parse::<f64>().is_ok();
    let right: Vec<bool> = (0..cols)
        .map(|i| {
            let mut body = rows.iter().skip(1).filter_map(|r| r.get(i)).peekable();
            body.peek().is_some() && body.all(|c| c.is_empty() || is_num(c))
        })
        .collect();
    let mut out = String::new();
    for (ri, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            let numeric = right[i] || (ri > 0 && is_num(c));
            if i > 0 {
                line.push_str("  ");
            }
            if numeric {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                if i + 1 < r.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if ri == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align_and_numbers_go_right() {
        let t = super::render(&[
            vec!["name".into(), "mae".into()],
            vec!["model".into(), "1.5".into()],
            vec!["last_value".into(), "12.25".into()],
        ]);
        assert_eq!(
            t,
            "name          mae\n-----------------\nmodel         1.5\nlast_value  12.25\n"
        );
    }
}
