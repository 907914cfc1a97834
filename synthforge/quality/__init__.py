"""Quality evaluation of synthetic tables: fidelity, detection, privacy, utility, gates and the HTML report."""
