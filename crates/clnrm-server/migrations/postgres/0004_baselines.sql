-- The span-tree baseline a run recorded (`update_baseline`), to download and commit.
ALTER TABLE runs ADD COLUMN baseline TEXT;
