-- SQLite: a table of 50,000 generated rows, an index, a join, aggregates, a window function,
-- a transaction rolled back, and a failing statement (sqlite3 then exits 1).
.bail on
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, val REAL, name TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
INSERT INTO t SELECT i, i % 17, (i * 37 % 1000) / 10.0, 'name' || (i % 101) FROM n;
CREATE INDEX t_grp ON t(grp);
CREATE TABLE g AS SELECT DISTINCT grp, 'group ' || grp AS label FROM t;
SELECT g.label, count(*), round(sum(t.val), 1) FROM t JOIN g USING (grp) GROUP BY grp ORDER BY grp LIMIT 5;
SELECT name, rank() OVER (ORDER BY count(*) DESC, name) FROM t GROUP BY name LIMIT 3;
BEGIN; DELETE FROM t; ROLLBACK;
SELECT count(*), max(id), printf('%.2f', avg(val)) FROM t;
PRAGMA integrity_check;
SELECT * FROM no_such_table;
SELECT 'never printed';
