"""AVSE challenge scenes: metadata formats, scene building and sample-exact mixing."""
